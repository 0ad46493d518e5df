import { useMemo, useRef, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { Empty, ErrorBox, Loading } from "../components/Feedback";
import { JsonView } from "../components/JsonView";
import { KeyValueTable } from "../components/KeyValueTable";
import { formatDuration, formatNumber, formatTime } from "../lib/format";
import { useAsync } from "../lib/useAsync";
import { useDocumentTitle } from "../lib/useDocumentTitle";
import * as traces from "../tracesApi";
import "../registry.css";

interface Node {
  span: traces.Span;
  depth: number;
  children: Node[];
}

/** Spans as a forest: children under their parent in start order; spans whose parent is missing are roots. */
function buildTree(spans: traces.Span[]): Node[] {
  const nodes = new Map(spans.map((span) => [span.id, { span, depth: 0, children: [] as Node[] }]));
  const roots: Node[] = [];
  for (const node of nodes.values()) {
    const parent = node.span.parentId ? nodes.get(node.span.parentId) : undefined;
    if (parent) parent.children.push(node);
    else roots.push(node);
  }
  const order = (list: Node[], depth: number) => {
    list.sort((a, b) => a.span.startMs - b.span.startMs);
    for (const node of list) {
      node.depth = depth;
      order(node.children, depth + 1);
    }
  };
  order(roots, 0);
  return roots;
}

/**
 * One trace: info, span tree with a timeline bar per span (keyboard: ↑/↓ move, ←/→ collapse and expand),
 * the selected span's inputs, outputs, attributes and events (`?span=` keeps it), and the assessments.
 */
export function TracePage() {
  const traceId = useParams().traceId ?? "";
  useDocumentTitle(`Trace ${traceId}`);
  const [search, setSearch] = useSearchParams();
  const state = useAsync(() => traces.getTrace(traceId), [traceId]);
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const treeRef = useRef<HTMLDivElement>(null);
  const roots = useMemo(() => buildTree(state.data?.spans ?? []), [state.data]);
  const visible: Node[] = [];
  const walk = (list: Node[]) => {
    for (const node of list) {
      visible.push(node);
      if (!collapsed.has(node.span.id)) walk(node.children);
    }
  };
  walk(roots);
  const spans = state.data?.spans ?? [];
  const start = Math.min(...spans.map((span) => span.startMs).filter(Number.isFinite));
  const end = Math.max(...spans.map((span) => (Number.isFinite(span.endMs) ? span.endMs : span.startMs)).filter(Number.isFinite));
  const total = Math.max(end - start, 0.001);
  const selectedId = search.get("span") ?? roots[0]?.span.id;
  const selected = spans.find((span) => span.id === selectedId);

  function select(id: string, focus = false) {
    const copy = new URLSearchParams(search);
    copy.set("span", id);
    setSearch(copy, { replace: true });
    if (focus) requestAnimationFrame(() => treeRef.current?.querySelector<HTMLElement>(`[data-span-id="${CSS.escape(id)}"]`)?.focus());
  }
  function toggle(id: string, open?: boolean) {
    const next = new Set(collapsed);
    const isOpen = !next.has(id);
    if (open === undefined ? isOpen : !open) next.add(id);
    else next.delete(id);
    setCollapsed(next);
  }
  function onKey(event: React.KeyboardEvent, node: Node, index: number) {
    const move = (to: number) => {
      const target = visible[Math.max(0, Math.min(visible.length - 1, to))];
      if (target) select(target.span.id, true);
    };
    if (event.key === "ArrowDown") move(index + 1);
    else if (event.key === "ArrowUp") move(index - 1);
    else if (event.key === "Home") move(0);
    else if (event.key === "End") move(visible.length - 1);
    else if (event.key === "ArrowRight" && node.children.length) toggle(node.span.id, true);
    else if (event.key === "ArrowLeft") {
      if (node.children.length && !collapsed.has(node.span.id)) toggle(node.span.id, false);
      else if (node.span.parentId) select(node.span.parentId, true);
    } else if (event.key === "Enter" || event.key === " ") select(node.span.id);
    else return;
    event.preventDefault();
  }

  const info = state.data?.info;
  const usage = info ? traces.usage(info) : undefined;
  const experimentId = info?.trace_location?.mlflow_experiment?.experiment_id;
  return (
    <section className="page">
      <nav className="breadcrumbs" aria-label="Breadcrumbs">
        <Link to={experimentId ? `/traces?experiment=${experimentId}` : "/traces"}>Traces</Link> /
      </nav>
      <div className="page-header">
        <h1>{info?.tags?.["mlflow.traceName"] || roots[0]?.span.name || traceId}</h1>
        {info ? <span className={`badge status-${info.state}`}>{info.state}</span> : null}
      </div>
      <ErrorBox error={state.error} />
      {state.loading && !state.data ? <Loading /> : null}
      {info ? (
        <>
          <KeyValueTable
            label="Trace details"
            rows={[
              ["Trace ID", <code key="id">{info.trace_id}</code>],
              ["Experiment", experimentId ? <Link to={`/experiments/${experimentId}`}>{experimentId}</Link> : "—"],
              ["Started", formatTime(Date.parse(info.request_time))],
              ["Duration", formatDuration(traces.durationMs(info.execution_duration))],
              [
                "Tokens",
                usage?.total === undefined ? "—" : `${formatNumber(usage.total)} (input ${formatNumber(usage.input)}, output ${formatNumber(usage.output)})`,
              ],
              ["Cost", usage?.cost === undefined ? "—" : `$${usage.cost.toFixed(4)}`],
            ]}
          />
          {spans.length === 0 ? <Empty>This trace has no spans.</Empty> : null}
          {spans.length > 0 ? (
            <div className="trace-layout">
              <div className="span-tree" ref={treeRef}>
                <div className="timeline-axis" aria-hidden="true">
                  <span>0</span>
                  <span>{formatDuration(total / 2)}</span>
                  <span>{formatDuration(total)}</span>
                </div>
                <div role="tree" aria-label="Spans">
                  {visible.map((node, index) => {
                    const span = node.span;
                    const left = ((span.startMs - start) / total) * 100;
                    const width = Number.isFinite(span.endMs) ? ((span.endMs - span.startMs) / total) * 100 : 100 - left;
                    const isSelected = span.id === selected?.id;
                    return (
                      <div
                        key={span.id}
                        className="span-row"
                        role="treeitem"
                        aria-level={node.depth + 1}
                        aria-selected={isSelected}
                        aria-expanded={node.children.length ? !collapsed.has(span.id) : undefined}
                        data-span-id={span.id}
                        tabIndex={isSelected || (!selected && index === 0) ? 0 : -1}
                        onClick={() => select(span.id)}
                        onKeyDown={(event) => onKey(event, node, index)}
                      >
                        <span className="span-name" style={{ paddingLeft: `${node.depth * 1.1}rem` }}>
                          {node.children.length ? (
                            <button
                              className="toggle"
                              tabIndex={-1}
                              aria-label={collapsed.has(span.id) ? `Expand ${span.name}` : `Collapse ${span.name}`}
                              onClick={(event) => {
                                event.stopPropagation();
                                toggle(span.id);
                              }}
                            >
                              {collapsed.has(span.id) ? "▸" : "▾"}
                            </button>
                          ) : (
                            <span className="toggle" style={{ display: "inline-block", width: "1.2rem" }} />
                          )}
                          <span>{span.name}</span>
                          {span.type ? <span className="span-type">{span.type}</span> : null}
                        </span>
                        <span className="timeline" title={`${formatDuration(span.endMs - span.startMs)} at +${formatDuration(span.startMs - start)}`}>
                          <span className={span.status === "ERROR" ? "bar error" : "bar"} style={{ left: `${left}%`, width: `${Math.max(width, 0)}%` }} />
                        </span>
                      </div>
                    );
                  })}
                </div>
              </div>
              {selected ? <SpanDetail span={selected} /> : null}
            </div>
          ) : null}
          <div className="section">
            <h2>Assessments</h2>
            <Assessments list={info.assessments ?? []} spanName={(id) => spans.find((span) => span.id === id)?.name} />
          </div>
          <details className="section">
            <summary>Tags and metadata</summary>
            <h2>Tags</h2>
            <JsonView value={info.tags ?? {}} />
            <h2>Metadata</h2>
            <JsonView value={info.trace_metadata ?? {}} />
          </details>
        </>
      ) : null}
    </section>
  );
}

function SpanDetail({ span }: { span: traces.Span }) {
  return (
    <div className="span-detail" aria-label={`Span ${span.name}`} role="region">
      <h2>{span.name}</h2>
      <KeyValueTable
        label="Span details"
        rows={[
          ["Span ID", <code key="id">{span.id}</code>],
          ["Type", span.type ?? "—"],
          ["Status", span.statusMessage ? `${span.status}: ${span.statusMessage}` : span.status],
          ["Duration", formatDuration(span.endMs - span.startMs)],
        ]}
      />
      <details open>
        <summary>Inputs</summary>
        <JsonView value={span.inputs ?? null} maxHeight={320} />
      </details>
      <details open>
        <summary>Outputs</summary>
        <JsonView value={span.outputs ?? null} maxHeight={320} />
      </details>
      <details>
        <summary>Attributes ({Object.keys(span.attributes).length})</summary>
        <JsonView value={span.attributes} maxHeight={320} />
      </details>
      <details open={span.events.length > 0}>
        <summary>Events ({span.events.length})</summary>
        <JsonView value={span.events.map((event) => ({ name: event.name, time: formatTime(event.timeMs), attributes: event.attributes }))} maxHeight={320} />
      </details>
    </div>
  );
}

function Assessments({ list, spanName }: { list: traces.AssessmentJson[]; spanName: (id: string) => string | undefined }) {
  if (list.length === 0) return <p className="muted">No assessments.</p>;
  return (
    <div aria-label="Assessments" role="list">
      {list.map((assessment, index) => {
        const kind = assessment.feedback ? "Feedback" : assessment.expectation ? "Expectation" : "Assessment";
        const value = assessment.feedback ? assessment.feedback.value : (assessment.expectation?.value ?? assessment.expectation?.serialized_value);
        return (
          <div key={assessment.assessment_id ?? index} className="assessment" role="listitem">
            <div className="toolbar">
              <strong>{assessment.assessment_name}</strong>
              <span className="badge">{kind}</span>
              {assessment.valid === false ? <span className="badge bad">overridden</span> : null}
              <span className="muted">
                by {assessment.source?.source_type ?? "?"}
                {assessment.source?.source_id ? ` (${assessment.source.source_id})` : ""}
                {assessment.span_id ? ` on span ${spanName(assessment.span_id) ?? assessment.span_id}` : ""}
                {assessment.create_time ? ` · ${formatTime(Date.parse(assessment.create_time))}` : ""}
              </span>
            </div>
            <JsonView value={value ?? null} />
            {assessment.rationale ? <p className="pre-line">Rationale: {assessment.rationale}</p> : null}
            {assessment.feedback?.error ? <JsonView value={assessment.feedback.error} /> : null}
          </div>
        );
      })}
    </div>
  );
}
