import { useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import * as api from "../api";
import { PromptDialog } from "../components/Dialog";
import { Empty, ErrorBox, Loading } from "../components/Feedback";
import { formatTime } from "../lib/format";
import { useAction } from "../lib/useAction";
import { useAsync } from "../lib/useAsync";
import { useDocumentTitle } from "../lib/useDocumentTitle";

type DialogState = { kind: "create" } | { kind: "rename"; experiment: api.Experiment } | undefined;

/** Experiment list: search by name, create, rename, delete, restore; select several to compare their runs. */
export function ExperimentsPage() {
  useDocumentTitle("Experiments");
  const navigate = useNavigate();
  const [search, setSearch] = useSearchParams();
  const query = search.get("q") ?? "";
  const view = (search.get("view") as api.ViewType | null) ?? "ACTIVE_ONLY";
  const [draft, setDraft] = useState(query);
  const [dialog, setDialog] = useState<DialogState>();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [actionError, runAction] = useAction();

  const experiments = useAsync(async () => {
    const escaped = query.replace(/'/g, "\\'");
    const filter = query ? `name LIKE '%${escaped}%'` : undefined;
    const all: api.Experiment[] = [];
    let page_token: string | undefined;
    do {
      const page = await api.searchExperiments({ filter, view_type: view, page_token });
      all.push(...(page.experiments ?? []));
      page_token = page.next_page_token;
    } while (page_token && all.length < 10000);
    return all;
  }, [query, view]);

  function update(next: Record<string, string>) {
    const copy = new URLSearchParams(search);
    for (const [key, value] of Object.entries(next)) {
      if (value) copy.set(key, value);
      else copy.delete(key);
    }
    setSearch(copy);
  }

  const act = async (action: () => Promise<unknown>) => (await runAction(action)) && experiments.reload();

  function toggle(id: string) {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  }

  const list = experiments.data ?? [];
  return (
    <section className="page">
      <div className="page-header">
        <h1>Experiments</h1>
        <span className="spacer" />
        <button className="primary" onClick={() => setDialog({ kind: "create" })}>
          Create experiment
        </button>
      </div>
      <form
        className="toolbar"
        role="search"
        onSubmit={(event) => {
          event.preventDefault();
          update({ q: draft.trim() });
        }}
      >
        <input
          aria-label="Search experiments by name"
          placeholder="Search by name"
          value={draft}
          onChange={(event) => setDraft(event.target.value)}
        />
        <button type="submit">Search</button>
        <label>
          Show
          <select value={view} onChange={(event) => update({ view: event.target.value === "ACTIVE_ONLY" ? "" : event.target.value })}>
            <option value="ACTIVE_ONLY">Active</option>
            <option value="DELETED_ONLY">Deleted</option>
            <option value="ALL">All</option>
          </select>
        </label>
        <span className="spacer" />
        <button
          type="button"
          disabled={selected.size === 0}
          onClick={() => navigate(`/experiments/${[...selected].join(",")}`)}
        >
          Compare runs of {selected.size || ""} selected
        </button>
      </form>
      <ErrorBox error={actionError} />
      <ErrorBox error={experiments.error} />
      {experiments.loading && !experiments.data ? <Loading /> : null}
      {experiments.data && list.length === 0 ? <Empty>No experiments match.</Empty> : null}
      {list.length > 0 ? (
        <table className="data-table" aria-label="Experiments">
          <thead>
            <tr>
              <th scope="col">
                <span className="visually-hidden">Select</span>
              </th>
              <th scope="col">Name</th>
              <th scope="col">ID</th>
              <th scope="col">Created</th>
              <th scope="col">Last updated</th>
              <th scope="col">State</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.map((experiment) => (
              <tr key={experiment.experiment_id} data-experiment-id={experiment.experiment_id}>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Select ${experiment.name}`}
                    checked={selected.has(experiment.experiment_id)}
                    onChange={() => toggle(experiment.experiment_id)}
                  />
                </td>
                <td>
                  <Link to={`/experiments/${experiment.experiment_id}`}>{experiment.name}</Link>
                </td>
                <td>{experiment.experiment_id}</td>
                <td>{formatTime(experiment.creation_time)}</td>
                <td>{formatTime(experiment.last_update_time)}</td>
                <td>{experiment.lifecycle_stage}</td>
                <td className="toolbar">
                  {experiment.lifecycle_stage === "active" ? (
                    <>
                      <button onClick={() => setDialog({ kind: "rename", experiment })} aria-label={`Rename ${experiment.name}`}>
                        Rename
                      </button>
                      <button
                        className="danger"
                        aria-label={`Delete ${experiment.name}`}
                        onClick={() => {
                          if (window.confirm(`Delete experiment "${experiment.name}"?`)) act(() => api.deleteExperiment(experiment.experiment_id));
                        }}
                      >
                        Delete
                      </button>
                    </>
                  ) : (
                    <button aria-label={`Restore ${experiment.name}`} onClick={() => act(() => api.restoreExperiment(experiment.experiment_id))}>
                      Restore
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {dialog?.kind === "create" ? (
        <PromptDialog
          title="Create experiment"
          label="Name"
          submitLabel="Create"
          onClose={() => setDialog(undefined)}
          onSubmit={async (name) => {
            const created = await api.createExperiment(name);
            navigate(`/experiments/${created.experiment_id}`);
          }}
        />
      ) : null}
      {dialog?.kind === "rename" ? (
        <PromptDialog
          title="Rename experiment"
          label="New name"
          initial={dialog.experiment.name}
          submitLabel="Rename"
          onClose={() => setDialog(undefined)}
          onSubmit={async (name) => {
            await api.renameExperiment(dialog.experiment.experiment_id, name);
            experiments.reload();
          }}
        />
      ) : null}
    </section>
  );
}
