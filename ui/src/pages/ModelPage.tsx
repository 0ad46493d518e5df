import { Link, useParams } from "react-router-dom";
import { AliasEditor } from "../components/AliasEditor";
import { Empty, ErrorBox, Loading } from "../components/Feedback";
import { KeyValueTable } from "../components/KeyValueTable";
import { StageSelect } from "../components/StageSelect";
import { TabBar, useTab } from "../components/Tabs";
import { DescriptionEditor, TagEditor } from "../components/TagEditor";
import { formatTime } from "../lib/format";
import { useAsync } from "../lib/useAsync";
import { useDocumentTitle } from "../lib/useDocumentTitle";
import * as registry from "../registryApi";
import "../registry.css";

const TABS = ["versions", "aliases", "tags"] as const;

/** A registered model: description, versions (with stage transitions), aliases and tags; tab in `?tab=`. */
export function ModelPage() {
  const name = useParams().name ?? "";
  useDocumentTitle(name);
  const [tab, setTab] = useTab(TABS, "versions");
  const model = useAsync(() => Promise.all([registry.getRegisteredModel(name), registry.searchModelVersions(name)]), [name]);
  const [info, versions] = model.data ?? [undefined, []];
  const reload = model.reload;
  const run = (action: Promise<unknown>) => action.then(reload);
  const aliasesOf = (version: string) => (info?.aliases ?? []).filter((alias) => alias.version === version).map((alias) => alias.alias);

  return (
    <section className="page">
      <nav className="breadcrumbs" aria-label="Breadcrumbs">
        <Link to="/models">Models</Link> /
      </nav>
      <div className="page-header">
        <h1>{name}</h1>
      </div>
      <ErrorBox error={model.error} />
      {model.loading && !model.data ? <Loading /> : null}
      {info ? (
        <>
          <KeyValueTable
            label="Model details"
            rows={[
              ["Created", formatTime(info.creation_timestamp)],
              ["Last updated", formatTime(info.last_updated_timestamp)],
              ["Versions", String(versions.length)],
            ]}
          />
          <div className="section">
            <h2>Description</h2>
            <DescriptionEditor value={info.description ?? ""} onSave={(text) => run(registry.updateRegisteredModel(name, text))} />
          </div>
          <TabBar tabs={TABS} current={tab} onSelect={setTab} />
          {tab === "versions" ? (
            versions.length === 0 ? (
              <Empty>No versions yet.</Empty>
            ) : (
              <table className="data-table" aria-label="Versions">
                <thead>
                  <tr>
                    <th scope="col">Version</th>
                    <th scope="col">Registered</th>
                    <th scope="col">Stage</th>
                    <th scope="col">Aliases</th>
                    <th scope="col">Source run</th>
                    <th scope="col">Description</th>
                  </tr>
                </thead>
                <tbody>
                  {versions.map((version) => (
                    <tr key={version.version} data-version={version.version}>
                      <td>
                        <Link to={`/models/${encodeURIComponent(name)}/versions/${version.version}`}>Version {version.version}</Link>
                      </td>
                      <td>{formatTime(version.creation_timestamp)}</td>
                      <td>
                        <StageSelect name={name} version={version.version} stage={version.current_stage} onChanged={reload} />
                      </td>
                      <td>
                        {aliasesOf(version.version).map((alias) => (
                          <span key={alias} className="badge alias">
                            @{alias}
                          </span>
                        ))}
                      </td>
                      <td>
                        {version.run_id ? (
                          <Link to={`/runs/${version.run_id}`}>
                            <code>{version.run_id}</code>
                          </Link>
                        ) : (
                          <span className="muted">—</span>
                        )}
                      </td>
                      <td className="clip">{version.description}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          ) : null}
          {tab === "aliases" ? (
            <AliasEditor
              aliases={info.aliases ?? []}
              versions={versions.map((version) => version.version)}
              onSet={(alias, version) => run(registry.setAlias(name, alias, version))}
              onDelete={(alias) => run(registry.deleteAlias(name, alias))}
            />
          ) : null}
          {tab === "tags" ? (
            <TagEditor
              label="Model tags"
              tags={info.tags ?? []}
              onSet={(key, value) => run(registry.setRegisteredModelTag(name, key, value))}
              onDelete={(key) => run(registry.deleteRegisteredModelTag(name, key))}
            />
          ) : null}
        </>
      ) : null}
    </section>
  );
}
