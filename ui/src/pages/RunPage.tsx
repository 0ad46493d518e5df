import { useState } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import * as api from "../api";
import { ArtifactBrowser } from "../components/ArtifactBrowser";
import { Empty, ErrorBox, Loading } from "../components/Feedback";
import { JsonView } from "../components/JsonView";
import { KeyValueTable } from "../components/KeyValueTable";
import { MetricChart } from "../components/MetricChart";
import { TabBar } from "../components/Tabs";
import { DescriptionEditor, TagEditor } from "../components/TagEditor";
import { formatDuration, formatNumber, formatTime } from "../lib/format";
import { runName } from "../lib/runColumns";
import { useAsync } from "../lib/useAsync";
import { useDocumentTitle } from "../lib/useDocumentTitle";

const TABS = ["overview", "params", "metrics", "tags", "datasets", "artifacts"] as const;
const NOTE_TAG = "mlflow.note.content";
const PARENT_TAG = "mlflow.parentRunId";
/** MLflow's own run tags (`mlflow.*`), folded away below the editable ones. */
const isSystemTag = (key: string) => key.startsWith("mlflow.");

/** A run: `/experiments/:experimentId/runs/:runId?tab=…` (artifacts add `&path=` for the previewed file). */
export function RunPage() {
  const { experimentId = "", runId = "" } = useParams();
  const [search, setSearch] = useSearchParams();
  const tabParam = search.get("tab");
  const tab = TABS.includes(tabParam as (typeof TABS)[number]) ? (tabParam as string) : "overview";
  const run = useAsync(() => api.getRun(runId), [runId]);
  const experiment = useAsync(() => api.getExperiment(experimentId), [experimentId]);
  const name = run.data ? runName(run.data) : runId;
  useDocumentTitle(`Run ${name}`);

  function select(nextTab: string, extra: Record<string, string> = {}) {
    setSearch(new URLSearchParams({ tab: nextTab, ...extra }));
  }

  return (
    <section className="page">
      <div className="breadcrumbs">
        <Link to="/experiments">Experiments</Link> / <Link to={`/experiments/${experimentId}`}>{experiment.data?.name ?? experimentId}</Link> /
      </div>
      <div className="page-header">
        <h1>{name}</h1>
        {run.data ? <span className={`badge status-${run.data.info.status}`}>{run.data.info.status}</span> : null}
        {run.data?.info.lifecycle_stage === "deleted" ? <span className="badge bad">deleted</span> : null}
      </div>
      <ErrorBox error={run.error} />
      {run.loading && !run.data ? <Loading /> : null}
      {run.data ? (
        <>
          <TabBar tabs={TABS} current={tab} onSelect={(next) => select(next)} />
          {tab === "overview" ? <Overview run={run.data} onChanged={run.reload} /> : null}
          {tab === "params" ? <ParamsTab run={run.data} /> : null}
          {tab === "metrics" ? <MetricsTab run={run.data} /> : null}
          {tab === "tags" ? <TagsTab run={run.data} onChanged={run.reload} /> : null}
          {tab === "datasets" ? <DatasetsTab run={run.data} /> : null}
          {tab === "artifacts" ? (
            <ArtifactBrowser runId={runId} selected={search.get("path") ?? undefined} onSelect={(path) => select("artifacts", { path })} />
          ) : null}
        </>
      ) : null}
    </section>
  );
}

function Overview({ run, onChanged }: { run: api.Run; onChanged: () => void }) {
  const info = run.info;
  const tags = run.data.tags ?? [];
  const parentId = api.tagValue(tags, PARENT_TAG);
  const children = useAsync(
    () =>
      api
        .searchRuns({ experiment_ids: [info.experiment_id], filter: `tags.\`${PARENT_TAG}\` = '${info.run_id}'`, max_results: 200, order_by: ["attributes.start_time ASC"] })
        .then((page) => page.runs ?? []),
    [info.run_id],
  );
  const parent = useAsync(() => (parentId ? api.getRun(parentId) : Promise.resolve(undefined)), [parentId]);
  const source = api.tagValue(tags, "mlflow.source.name");
  return (
    <div className="two-col">
      <div>
        <KeyValueTable
          label="Run overview"
          rows={[
            ["Run ID", <code key="id">{info.run_id}</code>],
            ["Run name", info.run_name ?? ""],
            ["Experiment ID", <Link key="e" to={`/experiments/${info.experiment_id}`}>{info.experiment_id}</Link>],
            ["Status", <span key="s" className={`status-${info.status}`}>{info.status}</span>],
            ["Started", formatTime(info.start_time)],
            ["Ended", formatTime(info.end_time)],
            ["Duration", info.end_time && info.start_time ? formatDuration(Number(info.end_time) - Number(info.start_time)) : "—"],
            ["User", info.user_id || api.tagValue(tags, "mlflow.user") || "—"],
            ["Source", source ?? "—"],
            ["Lifecycle stage", info.lifecycle_stage],
            ["Artifact URI", <code key="a">{info.artifact_uri}</code>],
            [
              "Parent run",
              parentId ? (
                <Link key="p" to={`/experiments/${parent.data?.info.experiment_id ?? info.experiment_id}/runs/${parentId}`}>
                  {parent.data ? runName(parent.data) : parentId}
                </Link>
              ) : (
                "—"
              ),
            ],
            [
              "Child runs",
              children.data?.length ? (
                <ul key="c" className="plain-list" aria-label="Child runs">
                  {children.data.map((child) => (
                    <li key={child.info.run_id}>
                      <Link to={`/experiments/${child.info.experiment_id}/runs/${child.info.run_id}`}>{runName(child)}</Link>
                    </li>
                  ))}
                </ul>
              ) : children.loading ? (
                "…"
              ) : (
                "—"
              ),
            ],
            ["Params", String(run.data.params?.length ?? 0)],
            ["Metrics", String(run.data.metrics?.length ?? 0)],
            ["Datasets", String(run.inputs?.dataset_inputs?.length ?? 0)],
          ]}
        />
      </div>
      <Description run={run} onChanged={onChanged} />
    </div>
  );
}

function Description({ run, onChanged }: { run: api.Run; onChanged: () => void }) {
  return (
    <div>
      <h2>Description</h2>
      <DescriptionEditor value={api.tagValue(run.data.tags, NOTE_TAG) ?? ""} onSave={(text) => api.setRunTag(run.info.run_id, NOTE_TAG, text).then(onChanged)} />
    </div>
  );
}

function ParamsTab({ run }: { run: api.Run }) {
  const params = [...(run.data.params ?? [])].sort((a, b) => a.key.localeCompare(b.key));
  const [filter, setFilter] = useState("");
  const shown = params.filter((param) => param.key.toLowerCase().includes(filter.toLowerCase()));
  if (!params.length) return <Empty>No parameters.</Empty>;
  return (
    <>
      <input aria-label="Filter parameters" placeholder="Filter by key" value={filter} onChange={(event) => setFilter(event.target.value)} />
      <table className="data-table" aria-label="Parameters">
        <thead>
          <tr>
            <th scope="col">Key</th>
            <th scope="col">Value</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((param) => (
            <tr key={param.key}>
              <td>{param.key}</td>
              <td style={{ whiteSpace: "pre-wrap", wordBreak: "break-word" }}>{param.value}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function MetricsTab({ run }: { run: api.Run }) {
  const metrics = [...(run.data.metrics ?? [])].sort((a, b) => a.key.localeCompare(b.key));
  if (!metrics.length) return <Empty>No metrics.</Empty>;
  const chartRun = [{ run_id: run.info.run_id, name: runName(run) }];
  return (
    <>
      <table className="data-table" aria-label="Metrics">
        <thead>
          <tr>
            <th scope="col">Key</th>
            <th scope="col">Latest value</th>
            <th scope="col">Step</th>
            <th scope="col">Logged at</th>
          </tr>
        </thead>
        <tbody>
          {metrics.map((metric) => (
            <tr key={metric.key}>
              <td>
                <Link to={`/metric?runs=${run.info.run_id}&key=${encodeURIComponent(metric.key)}`}>{metric.key}</Link>
              </td>
              <td>{formatNumber(metric.value)}</td>
              <td>{metric.step}</td>
              <td>{formatTime(metric.timestamp)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>History</h2>
      <div className="chart-grid">
        {metrics.slice(0, 24).map((metric) => (
          <MetricChart key={metric.key} runs={chartRun} metricKey={metric.key} xAxis="step" smoothing={0} logScale={false} height={220} />
        ))}
      </div>
    </>
  );
}

function TagsTab({ run, onChanged }: { run: api.Run; onChanged: () => void }) {
  const runId = run.info.run_id;
  const tags = [...(run.data.tags ?? [])].sort((a, b) => a.key.localeCompare(b.key));
  const systemTags = tags.filter((tag) => isSystemTag(tag.key));
  return (
    <>
      <TagEditor
        label="Tags"
        tags={tags}
        hidden={isSystemTag}
        onSet={(key, value) => api.setRunTag(runId, key, value).then(onChanged)}
        onDelete={(key) => api.deleteRunTag(runId, key).then(onChanged)}
      />
      {systemTags.length ? (
        <details>
          <summary>System tags ({systemTags.length})</summary>
          <KeyValueTable label="System tags" rows={systemTags.map((tag) => [tag.key, tag.value])} />
        </details>
      ) : null}
    </>
  );
}

function DatasetsTab({ run }: { run: api.Run }) {
  const inputs = run.inputs?.dataset_inputs ?? [];
  if (!inputs.length) return <Empty>No datasets.</Empty>;
  return (
    <table className="data-table" aria-label="Datasets">
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">Digest</th>
          <th scope="col">Context</th>
          <th scope="col">Source</th>
          <th scope="col">Schema and profile</th>
        </tr>
      </thead>
      <tbody>
        {inputs.map((input, index) => (
          <tr key={`${input.dataset.name}-${input.dataset.digest}-${index}`}>
            <td>{input.dataset.name}</td>
            <td>
              <code>{input.dataset.digest}</code>
            </td>
            <td>{api.tagValue(input.tags, "mlflow.data.context") ?? "—"}</td>
            <td>
              {input.dataset.source_type}
              <JsonView value={input.dataset.source} maxHeight={160} />
            </td>
            <td>
              {input.dataset.schema ? (
                <details>
                  <summary>Schema</summary>
                  <JsonView value={input.dataset.schema} maxHeight={240} />
                </details>
              ) : null}
              {input.dataset.profile ? (
                <details>
                  <summary>Profile</summary>
                  <JsonView value={input.dataset.profile} maxHeight={240} />
                </details>
              ) : null}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
