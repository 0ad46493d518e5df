import { Link, useParams } from "react-router-dom";
import * as api from "../api";
import { AliasEditor } from "../components/AliasEditor";
import { ErrorBox, Loading } from "../components/Feedback";
import { KeyValueTable } from "../components/KeyValueTable";
import { StageSelect } from "../components/StageSelect";
import { DescriptionEditor, TagEditor } from "../components/TagEditor";
import { formatTime } from "../lib/format";
import { useAsync } from "../lib/useAsync";
import { useDocumentTitle } from "../lib/useDocumentTitle";
import * as registry from "../registryApi";
import "../registry.css";

/** One model version: source run (linked to its run page), stage, aliases, tags and description. */
export function ModelVersionPage() {
  const params = useParams();
  const name = params.name ?? "";
  const version = params.version ?? "";
  useDocumentTitle(`${name} v${version}`);
  const state = useAsync(async () => {
    const [detail, model] = await Promise.all([registry.getModelVersion(name, version), registry.getRegisteredModel(name)]);
    // The run page needs the run's experiment; a deleted or foreign run just stays unlinked.
    const run = detail.run_id ? await api.getRun(detail.run_id).catch(() => undefined) : undefined;
    return { detail, model, run };
  }, [name, version]);
  const reload = state.reload;
  const run = (action: Promise<unknown>) => action.then(reload);
  const data = state.data;

  return (
    <section className="page">
      <nav className="breadcrumbs" aria-label="Breadcrumbs">
        <Link to="/models">Models</Link> / <Link to={`/models/${encodeURIComponent(name)}`}>{name}</Link> /
      </nav>
      <div className="page-header">
        <h1>
          {name} · Version {version}
        </h1>
      </div>
      <ErrorBox error={state.error} />
      {state.loading && !data ? <Loading /> : null}
      {data ? (
        <>
          <KeyValueTable
            label="Version details"
            rows={[
              ["Registered", formatTime(data.detail.creation_timestamp)],
              ["Last updated", formatTime(data.detail.last_updated_timestamp)],
              ["Status", data.detail.status ?? "—"],
              [
                "Source run",
                data.run ? (
                  <Link to={`/experiments/${data.run.info.experiment_id}/runs/${data.run.info.run_id}`}>{data.run.info.run_name || data.run.info.run_id}</Link>
                ) : (
                  data.detail.run_id || "—"
                ),
              ],
              ["Source", <code key="source">{data.detail.source ?? "—"}</code>],
              ["Stage", <StageSelect key="stage" name={name} version={version} stage={data.detail.current_stage} onChanged={reload} withArchive />],
            ]}
          />
          <div className="section">
            <h2>Description</h2>
            <DescriptionEditor value={data.detail.description ?? ""} onSave={(text) => run(registry.updateModelVersion(name, version, text))} />
          </div>
          <div className="section">
            <h2>Aliases</h2>
            <AliasEditor
              aliases={(data.model.aliases ?? []).filter((alias) => alias.version === version)}
              versions={[version]}
              fixedVersion={version}
              onSet={(alias) => run(registry.setAlias(name, alias, version))}
              onDelete={(alias) => run(registry.deleteAlias(name, alias))}
            />
          </div>
          <div className="section">
            <h2>Tags</h2>
            <TagEditor
              label="Version tags"
              tags={data.detail.tags ?? []}
              onSet={(key, value) => run(registry.setModelVersionTag(name, version, key, value))}
              onDelete={(key) => run(registry.deleteModelVersionTag(name, version, key))}
            />
          </div>
        </>
      ) : null}
    </section>
  );
}
