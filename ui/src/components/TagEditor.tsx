import { useId, useState } from "react";
import type { Tag } from "../api";
import { ErrorBox } from "./Feedback";
import { useAction } from "../lib/useAction";

/** A table of tags with inline edit, delete and an add row; every change goes to the server first. */
export function TagEditor(props: {
  label: string;
  tags: Tag[];
  onSet: (key: string, value: string) => Promise<unknown>;
  onDelete: (key: string) => Promise<unknown>;
  hidden?: (key: string) => boolean;
}) {
  const [editing, setEditing] = useState<string>();
  const [draft, setDraft] = useState("");
  const [newKey, setNewKey] = useState("");
  const [newValue, setNewValue] = useState("");
  const [error, act] = useAction();
  const addForm = useId();
  const shown = props.tags.filter((tag) => !props.hidden?.(tag.key));


  return (
    <div className="tag-editor">
      <ErrorBox error={error} />
      <table className="data-table" aria-label={props.label}>
        <thead>
          <tr>
            <th scope="col">Key</th>
            <th scope="col">Value</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((tag) => (
            <tr key={tag.key} data-tag={tag.key}>
              <td>
                <code>{tag.key}</code>
              </td>
              <td>
                {editing === tag.key ? (
                  <form
                    className="toolbar"
                    onSubmit={async (event) => {
                      event.preventDefault();
                      if (await act(() => props.onSet(tag.key, draft))) setEditing(undefined);
                    }}
                  >
                    <input aria-label={`Value of ${tag.key}`} value={draft} autoFocus onChange={(event) => setDraft(event.target.value)} onKeyDown={(event) => event.key === "Escape" && setEditing(undefined)} />
                    <button type="submit" className="primary">
                      Save
                    </button>
                    <button type="button" onClick={() => setEditing(undefined)}>
                      Cancel
                    </button>
                  </form>
                ) : (
                  <span className="pre-line">{tag.value}</span>
                )}
              </td>
              <td className="toolbar">
                <button
                  aria-label={`Edit tag ${tag.key}`}
                  onClick={() => {
                    setEditing(tag.key);
                    setDraft(tag.value);
                  }}
                >
                  Edit
                </button>
                <button className="danger" aria-label={`Delete tag ${tag.key}`} onClick={() => act(() => props.onDelete(tag.key))}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
          <tr>
            <td>
              <input form={addForm} aria-label="New tag key" placeholder="key" value={newKey} onChange={(event) => setNewKey(event.target.value)} />
            </td>
            <td>
              <input form={addForm} aria-label="New tag value" placeholder="value" value={newValue} onChange={(event) => setNewValue(event.target.value)} />
            </td>
            <td>
              <button type="submit" form={addForm} disabled={!newKey.trim()}>
                Add tag
              </button>
            </td>
          </tr>
        </tbody>
      </table>
      {/* The add row's fields belong to this form (a form cannot wrap table cells), so Enter adds the tag. */}
      <form
        id={addForm}
        aria-label={`Add to ${props.label}`}
        onSubmit={async (event) => {
          event.preventDefault();
          if (newKey.trim() && (await act(() => props.onSet(newKey.trim(), newValue)))) {
            setNewKey("");
            setNewValue("");
          }
        }}
      />
    </div>
  );
}

/** A description shown as text with an Edit button that turns it into a textarea. */
export function DescriptionEditor({ value, onSave }: { value: string; onSave: (text: string) => Promise<unknown> }) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(value);
  const [error, act] = useAction();
  if (!editing)
    return (
      <div className="description">
        {value ? (
          <p className="pre-line" data-testid="description">
            {value}
          </p>
        ) : (
          <p className="muted">No description.</p>
        )}
        <button
          onClick={() => {
            setDraft(value);
            setEditing(true);
          }}
        >
          Edit description
        </button>
      </div>
    );
  return (
    <form
      className="description"
      onSubmit={async (event) => {
        event.preventDefault();
        if (await act(() => onSave(draft))) setEditing(false);
      }}
    >
      <textarea aria-label="Description" rows={4} cols={80} value={draft} autoFocus onChange={(event) => setDraft(event.target.value)} />
      <ErrorBox error={error} />
      <div className="toolbar">
        <button type="submit" className="primary">
          Save description
        </button>
        <button type="button" onClick={() => setEditing(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}
