import { useEffect, useState } from "react";
import { Link } from "react-router-dom";
import * as api from "../api";
import * as registry from "../registryApi";
import { formatBytes } from "../lib/format";
import { useAsync } from "../lib/useAsync";
import { FormDialog } from "./Dialog";
import { Empty, ErrorBox, Loading } from "./Feedback";
import { JsonView } from "./JsonView";

const PREVIEW_LIMIT = 512 * 1024;
const TEXT_EXTENSIONS = ["txt", "log", "md", "py", "sh", "toml", "ini", "cfg", "html", "xml", "js", "ts", "sql", "r", "java", "scala", "out", "err"];
const IMAGE_EXTENSIONS = ["png", "jpg", "jpeg", "gif", "svg", "webp", "bmp"];

type PreviewKind = "text" | "json" | "yaml" | "csv" | "tsv" | "image" | "mlmodel" | "none";

export function previewKind(path: string): PreviewKind {
  const name = path.split("/").pop() ?? path;
  if (name === "MLmodel") return "mlmodel";
  const extension = name.includes(".") ? name.split(".").pop()!.toLowerCase() : "";
  if (extension === "json" || extension === "jsonl") return "json";
  if (extension === "yaml" || extension === "yml") return "yaml";
  if (extension === "csv") return "csv";
  if (extension === "tsv") return "tsv";
  if (IMAGE_EXTENSIONS.includes(extension)) return "image";
  if (TEXT_EXTENSIONS.includes(extension) || ["requirements.txt", "conda.yaml", "python_env.yaml", "LICENSE", "README"].includes(name)) return "text";
  return "none";
}

/**
 * A run's artifacts: a lazily loaded tree on the left, a preview and download link on the right. A selected
 * folder that holds an `MLmodel` file shows the model and a "Register model" button.
 */
export function ArtifactBrowser({ runId, selected, onSelect }: { runId: string; selected?: string; onSelect: (path: string) => void }) {
  const root = useAsync(() => api.listArtifacts(runId), [runId]);
  const [infos, setInfos] = useState<Record<string, api.FileInfo>>({});
  const remember = (files: api.FileInfo[]) => setInfos((previous) => ({ ...previous, ...Object.fromEntries(files.map((file) => [file.path, file])) }));
  useEffect(() => {
    if (root.data) remember(root.data);
  }, [root.data]);
  return (
    <div className="artifact-browser">
      <nav className="artifact-tree" aria-label="Artifacts">
        <ErrorBox error={root.error} />
        {root.loading && !root.data ? <Loading /> : null}
        {root.data && root.data.length === 0 ? <Empty>No artifacts.</Empty> : null}
        {root.data ? <ArtifactList runId={runId} files={root.data} selected={selected} onSelect={onSelect} onListed={remember} /> : null}
      </nav>
      <div className="artifact-preview" aria-live="polite">
        {!selected ? <p className="muted">Select a file to preview it.</p> : null}
        {selected && infos[selected]?.is_dir ? <FolderPreview key={selected} runId={runId} path={selected} /> : null}
        {/* Until the tree has listed a deep-linked path, a name with a known preview is taken for a file. */}
        {selected && (infos[selected] ? !infos[selected].is_dir : previewKind(selected) !== "none") ? (
          <ArtifactPreview key={selected} runId={runId} path={selected} size={infos[selected]?.file_size} />
        ) : null}
      </div>
    </div>
  );
}

function ArtifactList(props: { runId: string; files: api.FileInfo[]; selected?: string; onSelect: (path: string) => void; onListed: (files: api.FileInfo[]) => void }) {
  return (
    <ul role="group">
      {props.files.map((file) => (file.is_dir ? <ArtifactDirectory key={file.path} {...props} file={file} /> : <ArtifactFile key={file.path} {...props} file={file} />))}
    </ul>
  );
}

function ArtifactFile({ file, selected, onSelect }: { file: api.FileInfo; selected?: string; onSelect: (path: string) => void }) {
  const name = file.path.split("/").pop();
  return (
    <li>
      <button className={selected === file.path ? "selected" : undefined} aria-current={selected === file.path} onClick={() => onSelect(file.path)} title={file.path}>
        📄 {name} <span className="muted">{formatBytes(file.file_size)}</span>
      </button>
    </li>
  );
}

function ArtifactDirectory(props: { runId: string; file: api.FileInfo; selected?: string; onSelect: (path: string) => void; onListed: (files: api.FileInfo[]) => void }) {
  const { runId, file, selected } = props;
  const [open, setOpen] = useState(!!selected && (selected === file.path || selected.startsWith(`${file.path}/`)));
  const [children, setChildren] = useState<api.FileInfo[]>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    if (open && !children) {
      api.listArtifacts(runId, file.path).then((files) => {
        setChildren(files);
        props.onListed(files);
      }, setError);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open, runId, file.path]);
  return (
    <li>
      <button
        className={selected === file.path ? "selected" : undefined}
        aria-expanded={open}
        aria-current={selected === file.path}
        onClick={() => {
          // A first click selects and opens the folder; clicking the selected folder folds or unfolds it.
          setOpen(selected === file.path ? !open : true);
          props.onSelect(file.path);
        }}
        title={file.path}
      >
        {open ? "▾" : "▸"} 📁 {file.path.split("/").pop()}
      </button>
      {open ? (
        <>
          <ErrorBox error={error} />
          {children ? <ArtifactList {...props} files={children} /> : error ? null : <Loading />}
        </>
      ) : null}
    </li>
  );
}

/** A selected folder: its entries, and for an MLflow model folder the MLmodel file and "Register model". */
function FolderPreview({ runId, path }: { runId: string; path: string }) {
  const files = useAsync(() => api.listArtifacts(runId, path), [runId, path]);
  const isModel = !!files.data?.some((file) => !file.is_dir && file.path.split("/").pop() === "MLmodel");
  const mlmodel = useAsync(async () => {
    if (!isModel) return undefined;
    const response = await fetch(api.artifactUrl(runId, `${path}/MLmodel`));
    if (!response.ok) throw new Error(`could not read ${path}/MLmodel: HTTP ${response.status}`);
    return response.text();
  }, [runId, path, isModel]);
  const [registering, setRegistering] = useState(false);
  const [registered, setRegistered] = useState<registry.ModelVersion>();
  return (
    <div data-testid="artifact-preview" data-kind="folder">
      <div className="toolbar">
        <strong>{path}/</strong>
        <span className="spacer" />
        {isModel ? (
          <button className="primary" onClick={() => setRegistering(true)}>
            Register model
          </button>
        ) : null}
      </div>
      {registered ? (
        <p role="status">
          Registered as{" "}
          <Link to={`/models/${encodeURIComponent(registered.name)}/versions/${registered.version}`}>
            {registered.name} version {registered.version}
          </Link>
          .
        </p>
      ) : null}
      <ErrorBox error={files.error ?? mlmodel.error} />
      {files.loading && !files.data ? <Loading /> : null}
      {files.data && !isModel ? <p className="muted">Folder with {files.data.length} entries; select a file to preview it.</p> : null}
      {mlmodel.data ? <MlModelView body={mlmodel.data} /> : null}
      {registering ? (
        <RegisterModelDialog runId={runId} path={path} onClose={() => setRegistering(false)} onRegistered={setRegistered} />
      ) : null}
    </div>
  );
}

const NEW_MODEL = "\u0000new";

/**
 * Registers the model folder `path` of a run as a new version of an existing registered model or of a new
 * one: source `runs:/<run_id>/<path>` with the run's id, as `mlflow.register_model` does for a run's model.
 */
function RegisterModelDialog(props: { runId: string; path: string; onClose: () => void; onRegistered: (version: registry.ModelVersion) => void }) {
  const models = useAsync(async () => (await registry.searchRegisteredModels("")).filter((model) => !registry.isPrompt(model)), []);
  const [choice, setChoice] = useState(NEW_MODEL);
  const [newName, setNewName] = useState("");
  const name = choice === NEW_MODEL ? newName.trim() : choice;
  const source = `runs:/${props.runId}/${props.path}`;
  return (
    <FormDialog
      title="Register model"
      submitLabel="Register"
      canSubmit={!!name}
      onClose={props.onClose}
      onSubmit={async () => {
        if (choice === NEW_MODEL) await registry.createRegisteredModel(name, "", []);
        props.onRegistered(await registry.createModelVersion({ name, source, run_id: props.runId }));
      }}
    >
      <label>
        Model
        <select value={choice} onChange={(event) => setChoice(event.target.value)}>
          <option value={NEW_MODEL}>Create new model</option>
          {(models.data ?? []).map((model) => (
            <option key={model.name} value={model.name}>
              {model.name}
            </option>
          ))}
        </select>
      </label>
      {choice === NEW_MODEL ? (
        <label>
          Model name
          <input value={newName} onChange={(event) => setNewName(event.target.value)} />
        </label>
      ) : null}
      <p className="hint">
        Source: <code>{source}</code>
      </p>
      <ErrorBox error={models.error} />
    </FormDialog>
  );
}

export function ArtifactPreview({ runId, path, size }: { runId: string; path: string; size?: number }) {
  const kind = previewKind(path);
  const url = api.artifactUrl(runId, path);
  const text = useAsync(async () => {
    if (kind === "none" || kind === "image") return undefined;
    const response = await fetch(url);
    if (!response.ok) throw new Error(`could not read ${path}: HTTP ${response.status}`);
    const body = await response.text();
    return { body: body.slice(0, PREVIEW_LIMIT), truncated: body.length > PREVIEW_LIMIT };
  }, [url, kind]);
  return (
    <div data-testid="artifact-preview" data-kind={kind}>
      <div className="toolbar">
        <strong>{path}</strong>
        <span className="muted">{formatBytes(size)}</span>
        <span className="spacer" />
        <a className="button" href={url} download={path.split("/").pop()}>
          Download
        </a>
      </div>
      <ErrorBox error={text.error} />
      {text.loading && kind !== "image" && kind !== "none" ? <Loading /> : null}
      {kind === "image" ? <img src={url} alt={path} /> : null}
      {kind === "none" ? <p className="muted">No preview for this file type; download it instead.</p> : null}
      {text.data ? <TextPreview kind={kind} body={text.data.body} /> : null}
      {text.data?.truncated ? <p className="muted">Preview shows the first {formatBytes(PREVIEW_LIMIT)}.</p> : null}
    </div>
  );
}

function TextPreview({ kind, body }: { kind: PreviewKind; body: string }) {
  if (kind === "json") return <JsonView value={body} maxHeight={600} />;
  if (kind === "csv" || kind === "tsv") return <CsvTable body={body} separator={kind === "csv" ? "," : "\t"} />;
  if (kind === "mlmodel") return <MlModelView body={body} />;
  return (
    <pre className="json-view" tabIndex={0}>
      {body}
    </pre>
  );
}

/** RFC 4180 CSV: quoted fields, doubled quotes, separators and newlines inside quotes. */
export function parseCsv(body: string, separator: string, maxRows: number): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let index = 0; index < body.length && rows.length < maxRows; index++) {
    const char = body[index];
    if (quoted) {
      if (char === '"' && body[index + 1] === '"') {
        field += '"';
        index++;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"' && field === "") quoted = true;
    else if (char === separator) {
      row.push(field);
      field = "";
    } else if (char === "\n" || char === "\r") {
      if (char === "\r" && body[index + 1] === "\n") index++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += char;
  }
  if ((field !== "" || row.length) && rows.length < maxRows) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

function CsvTable({ body, separator }: { body: string; separator: string }) {
  const rows = parseCsv(body, separator, 501);
  if (!rows.length) return <Empty>Empty file.</Empty>;
  const [header, ...data] = rows;
  return (
    <>
      <table className="preview-table" aria-label="Table preview">
        <thead>
          <tr>
            {header.map((cell, index) => (
              <th key={index} scope="col">
                {cell}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {data.slice(0, 500).map((row, rowIndex) => (
            <tr key={rowIndex}>
              {row.map((cell, index) => (
                <td key={index}>{cell}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {data.length >= 500 ? <p className="muted">First 500 rows.</p> : null}
    </>
  );
}

/** The MLmodel file: its top-level fields and flavors, then the file itself. */
function MlModelView({ body }: { body: string }) {
  const fields: [string, string][] = [];
  const flavors: string[] = [];
  let section = "";
  for (const line of body.split("\n")) {
    const top = line.match(/^([A-Za-z_][\w.-]*):\s*(.*)$/);
    if (top) {
      section = top[1];
      if (top[2]) fields.push([top[1], top[2].replace(/^['"]|['"]$/g, "")]);
      continue;
    }
    const nested = line.match(/^ {2}([A-Za-z_][\w.-]*):/);
    if (section === "flavors" && nested) flavors.push(nested[1]);
  }
  return (
    <div>
      <h3>MLflow model</h3>
      <table className="kv-table" aria-label="MLmodel">
        <tbody>
          <tr>
            <th scope="row">flavors</th>
            <td data-testid="mlmodel-flavors">{flavors.join(", ") || "—"}</td>
          </tr>
          {fields.map(([key, value]) => (
            <tr key={key}>
              <th scope="row">{key}</th>
              <td>{value}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <pre className="json-view" tabIndex={0}>
        {body}
      </pre>
    </div>
  );
}
