import { useState } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { AliasEditor } from "../components/AliasEditor";
import { Empty, ErrorBox, Loading } from "../components/Feedback";
import { PromptFormDialog } from "../components/PromptForm";
import { TagEditor } from "../components/TagEditor";
import { formatTime } from "../lib/format";
import { lineDiff } from "../lib/lineDiff";
import { useAsync } from "../lib/useAsync";
import { useDocumentTitle } from "../lib/useDocumentTitle";
import * as registry from "../registryApi";
import "../registry.css";

/** Tags MLflow uses to store the prompt itself; the tag editors hide them. */
const internalTag = (key: string) => key === registry.PROMPT_TEXT_TAG || key === registry.IS_PROMPT_TAG || key.startsWith("_mlflow_prompt");

function Template({ template }: { template: registry.PromptTemplate }) {
  if (template.kind === "text")
    return (
      <pre className="template" aria-label="Template" tabIndex={0}>
        {template.text}
      </pre>
    );
  return (
    <div aria-label="Chat messages" role="list">
      {template.messages.map((message, index) => (
        <div key={index} className="chat-message" role="listitem">
          <div className="role">{message.role}</div>
          <pre>{message.content}</pre>
        </div>
      ))}
    </div>
  );
}

/**
 * A prompt: its versions (newest first), the chosen version's template, commit message, aliases and tags,
 * and a line diff of two versions. URL state: `?version=N`, `?view=diff&from=A&to=B`.
 */
export function PromptPage() {
  const name = useParams().name ?? "";
  useDocumentTitle(`Prompt ${name}`);
  const [search, setSearch] = useSearchParams();
  const state = useAsync(() => Promise.all([registry.getRegisteredModel(name), registry.searchModelVersions(name, true)]), [name]);
  const [info, versions] = state.data ?? [undefined, []];
  const reload = state.reload;
  const run = (action: Promise<unknown>) => action.then(reload);
  const view = search.get("view") === "diff" ? "diff" : "version";
  const chosen = versions.find((version) => version.version === search.get("version")) ?? versions[0];
  const from = versions.find((version) => version.version === search.get("from")) ?? versions[1] ?? versions[0];
  const to = versions.find((version) => version.version === search.get("to")) ?? versions[0];

  function update(next: Record<string, string | undefined>) {
    const copy = new URLSearchParams(search);
    for (const [key, value] of Object.entries(next)) {
      if (value) copy.set(key, value);
      else copy.delete(key);
    }
    setSearch(copy);
  }
  const link = (next: Record<string, string>) => `?${new URLSearchParams(next).toString()}`;
  const [creating, setCreating] = useState(false);

  return (
    <section className="page">
      <nav className="breadcrumbs" aria-label="Breadcrumbs">
        <Link to="/prompts">Prompts</Link> /
      </nav>
      <div className="page-header">
        <h1>{name}</h1>
        <span className="spacer" />
        <button className="primary" disabled={!info} onClick={() => setCreating(true)}>
          New version
        </button>
        <div className="tabs" role="tablist" style={{ margin: 0, borderBottom: "none" }}>
          <button role="tab" aria-selected={view === "version"} className={view === "version" ? "tab active" : "tab"} onClick={() => update({ view: undefined })}>
            Version
          </button>
          <button
            role="tab"
            aria-selected={view === "diff"}
            className={view === "diff" ? "tab active" : "tab"}
            disabled={versions.length < 2}
            onClick={() => update({ view: "diff", from: from?.version, to: to?.version })}
          >
            Compare versions
          </button>
        </div>
      </div>
      {creating ? (
        <PromptFormDialog
          name={name}
          initial={chosen ? registry.promptTemplate(chosen) : undefined}
          onClose={() => setCreating(false)}
          onCreated={(version) => {
            setSearch(new URLSearchParams({ version: version.version }));
            reload();
          }}
        />
      ) : null}
      <ErrorBox error={state.error} />
      {state.loading && !state.data ? <Loading /> : null}
      {info && versions.length === 0 ? <Empty>This prompt has no versions.</Empty> : null}
      {info && chosen ? (
        <div className="prompt-layout">
          <nav aria-label="Prompt versions">
            <ul className="version-list">
              {versions.map((version) => {
                const aliases = (info.aliases ?? []).filter((alias) => alias.version === version.version);
                return (
                  <li key={version.version}>
                    <Link to={link({ version: version.version })} aria-current={view === "version" && version.version === chosen.version ? "true" : undefined}>
                      Version {version.version}
                      {aliases.map((alias) => (
                        <span key={alias.alias} className="badge alias" style={{ marginLeft: "0.35rem" }}>
                          @{alias.alias}
                        </span>
                      ))}
                      <div className="muted">{formatTime(version.creation_timestamp)}</div>
                    </Link>
                  </li>
                );
              })}
            </ul>
          </nav>
          {view === "version" ? (
            <div className="prompt-version">
              <h2>Version {chosen.version}</h2>
              <p>
                <strong>Commit message: </strong>
                {chosen.description ? chosen.description : <span className="muted">none</span>}
              </p>
              <Template template={registry.promptTemplate(chosen)} />
              <div className="section" style={{ marginTop: "1rem" }}>
                <h2>Aliases</h2>
                <AliasEditor
                  aliases={info.aliases ?? []}
                  versions={versions.map((version) => version.version)}
                  onSet={(alias, version) => run(registry.setAlias(name, alias, version))}
                  onDelete={(alias) => run(registry.deleteAlias(name, alias))}
                />
              </div>
              <div className="section" style={{ marginTop: "1rem" }}>
                <h2>Version tags</h2>
                <TagEditor
                  label="Version tags"
                  tags={chosen.tags ?? []}
                  hidden={internalTag}
                  onSet={(key, value) => run(registry.setModelVersionTag(name, chosen.version, key, value))}
                  onDelete={(key) => run(registry.deleteModelVersionTag(name, chosen.version, key))}
                />
              </div>
              <div className="section" style={{ marginTop: "1rem" }}>
                <h2>Prompt tags</h2>
                <TagEditor
                  label="Prompt tags"
                  tags={info.tags ?? []}
                  hidden={internalTag}
                  onSet={(key, value) => run(registry.setRegisteredModelTag(name, key, value))}
                  onDelete={(key) => run(registry.deleteRegisteredModelTag(name, key))}
                />
              </div>
            </div>
          ) : (
            <div className="prompt-diff">
              <div className="toolbar">
                <label>
                  From
                  <select aria-label="Compare from version" value={from?.version} onChange={(event) => update({ from: event.target.value })}>
                    {versions.map((version) => (
                      <option key={version.version} value={version.version}>
                        Version {version.version}
                      </option>
                    ))}
                  </select>
                </label>
                <label>
                  to
                  <select aria-label="Compare to version" value={to?.version} onChange={(event) => update({ to: event.target.value })}>
                    {versions.map((version) => (
                      <option key={version.version} value={version.version}>
                        Version {version.version}
                      </option>
                    ))}
                  </select>
                </label>
              </div>
              {from && to ? <Diff before={from} after={to} /> : null}
            </div>
          )}
        </div>
      ) : null}
    </section>
  );
}

function Diff({ before, after }: { before: registry.ModelVersion; after: registry.ModelVersion }) {
  const lines = lineDiff(registry.templateLines(registry.promptTemplate(before)), registry.templateLines(registry.promptTemplate(after)));
  const added = lines.filter((line) => line.kind === "added").length;
  const removed = lines.filter((line) => line.kind === "removed").length;
  return (
    <>
      <p className="muted" aria-live="polite">
        Version {before.version} → {after.version}: {added} line{added === 1 ? "" : "s"} added, {removed} removed
      </p>
      <table className="diff" aria-label={`Diff of version ${before.version} and ${after.version}`}>
        <tbody>
          {lines.map((line, index) => (
            <tr key={index} className={line.kind}>
              <td className="num">{line.oldNumber ?? ""}</td>
              <td className="num">{line.newNumber ?? ""}</td>
              <td className="sign" aria-label={line.kind}>
                {line.kind === "added" ? "+" : line.kind === "removed" ? "−" : " "}
              </td>
              <td>{line.text}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
