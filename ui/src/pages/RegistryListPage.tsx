import { useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import type { Tag } from "../api";
import { filledTags, FormDialog, TagFields } from "../components/Dialog";
import { Empty, ErrorBox, Loading } from "../components/Feedback";
import { PromptFormDialog } from "../components/PromptForm";
import { formatTime } from "../lib/format";
import { useAsync } from "../lib/useAsync";
import { useDocumentTitle } from "../lib/useDocumentTitle";
import * as registry from "../registryApi";
import "../registry.css";

/** Registered models (`kind="models"`) or prompts (`kind="prompts"`): search by name, kept in `?q=`. */
export function RegistryListPage({ kind }: { kind: "models" | "prompts" }) {
  const prompts = kind === "prompts";
  const title = prompts ? "Prompts" : "Models";
  useDocumentTitle(title);
  const [search, setSearch] = useSearchParams();
  const query = search.get("q") ?? "";
  const [draft, setDraft] = useState(query);
  const models = useAsync(
    async () => (await registry.searchRegisteredModels(query, prompts)).filter((model) => registry.isPrompt(model) === prompts),
    [query, prompts],
  );
  const list = models.data ?? [];
  const base = prompts ? "/prompts" : "/models";
  const navigate = useNavigate();
  const [creating, setCreating] = useState(false);
  return (
    <section className="page">
      <div className="page-header">
        <h1>{title}</h1>
        <span className="spacer" />
        <button className="primary" onClick={() => setCreating(true)}>
          {prompts ? "Create prompt" : "Create model"}
        </button>
      </div>
      {creating && prompts ? (
        <PromptFormDialog
          onClose={() => setCreating(false)}
          onCreated={(version) => navigate(`/prompts/${encodeURIComponent(version.name)}?version=${version.version}`)}
        />
      ) : null}
      {creating && !prompts ? (
        <CreateModelDialog onClose={() => setCreating(false)} onCreated={(name) => navigate(`/models/${encodeURIComponent(name)}`)} />
      ) : null}
      <form
        className="toolbar"
        role="search"
        onSubmit={(event) => {
          event.preventDefault();
          const copy = new URLSearchParams(search);
          if (draft.trim()) copy.set("q", draft.trim());
          else copy.delete("q");
          setSearch(copy);
        }}
      >
        <input aria-label={`Search ${kind} by name`} placeholder="Search by name" value={draft} onChange={(event) => setDraft(event.target.value)} />
        <button type="submit">Search</button>
        {query ? (
          <button
            type="button"
            onClick={() => {
              setDraft("");
              setSearch(new URLSearchParams());
            }}
          >
            Clear
          </button>
        ) : null}
      </form>
      <ErrorBox error={models.error} />
      {models.loading && !models.data ? <Loading /> : null}
      {models.data && list.length === 0 ? <Empty>{query ? `No ${kind} match “${query}”.` : `No ${kind} yet.`}</Empty> : null}
      {list.length > 0 ? (
        <table className="data-table" aria-label={title}>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Latest version</th>
              <th scope="col">Aliases</th>
              {prompts ? <th scope="col">Commit message</th> : <th scope="col">Description</th>}
              <th scope="col">Last updated</th>
            </tr>
          </thead>
          <tbody>
            {list.map((model) => {
              const latest = (model.latest_versions ?? []).reduce<registry.ModelVersion | undefined>(
                (best, version) => (!best || Number(version.version) > Number(best.version) ? version : best),
                undefined,
              );
              return (
                <tr key={model.name}>
                  <td>
                    <Link to={`${base}/${encodeURIComponent(model.name)}`}>{model.name}</Link>
                  </td>
                  <td>
                    {latest ? (
                      <Link to={prompts ? `${base}/${encodeURIComponent(model.name)}?version=${latest.version}` : `${base}/${encodeURIComponent(model.name)}/versions/${latest.version}`}>
                        Version {latest.version}
                      </Link>
                    ) : (
                      <span className="muted">—</span>
                    )}
                  </td>
                  <td>
                    {(model.aliases ?? []).map((alias) => (
                      <span key={alias.alias} className="badge alias">
                        @{alias.alias}: v{alias.version}
                      </span>
                    ))}
                  </td>
                  <td className="clip">{prompts ? (latest?.description ?? "") : (model.description ?? "")}</td>
                  <td>{formatTime(model.last_updated_timestamp)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

/** "Create model": a registered model with a name, description and tags. */
function CreateModelDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (name: string) => void }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [tags, setTags] = useState<Tag[]>([]);
  return (
    <FormDialog
      title="Create model"
      submitLabel="Create model"
      canSubmit={!!name.trim()}
      wide
      onClose={onClose}
      onSubmit={async () => onCreated((await registry.createRegisteredModel(name.trim(), description.trim(), filledTags(tags))).name)}
    >
      <label>
        Name
        <input value={name} onChange={(event) => setName(event.target.value)} />
      </label>
      <label>
        Description
        <textarea rows={4} value={description} onChange={(event) => setDescription(event.target.value)} />
      </label>
      <TagFields tags={tags} onChange={setTags} />
    </FormDialog>
  );
}
