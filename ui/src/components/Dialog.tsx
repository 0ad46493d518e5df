import { useEffect, useRef, useState } from "react";
import { errorMessage, type Tag } from "../api";

const FOCUSABLE = "input, select, textarea, button, a[href], [tabindex]:not([tabindex='-1'])";

/**
 * A modal form: focus moves to its first field and comes back to the opener on close, Tab cycles inside
 * it, Escape or the backdrop closes it, and a failed submit shows the server's error inline.
 */
export function FormDialog(props: {
  title: string;
  submitLabel: string;
  canSubmit: boolean;
  onSubmit: () => Promise<unknown>;
  onClose: () => void;
  wide?: boolean;
  children: React.ReactNode;
}) {
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    // The first field in reading order; of a radio group, the checked one (where Tab would land).
    const first = form.current?.querySelector<HTMLInputElement>("input:not([type=radio]), input[type=radio]:checked, textarea, select");
    first?.focus();
    if (first instanceof HTMLInputElement) first.select();
    return () => opener?.focus();
  }, []);
  // Escape closes the dialog wherever focus is.
  const close = useRef(props.onClose);
  close.current = props.onClose;
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => event.key === "Escape" && close.current();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  async function submit(event: React.FormEvent) {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(undefined);
    try {
      await props.onSubmit();
      props.onClose();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }
  function keyDown(event: React.KeyboardEvent) {
    if (event.key !== "Tab" || !form.current) return;
    const focusable = [...form.current.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((element) => !element.hasAttribute("disabled"));
    if (!focusable.length) return;
    const [first, last] = [focusable[0], focusable[focusable.length - 1]];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  }
  return (
    <div className="dialog-backdrop" onMouseDown={props.onClose}>
      <form
        ref={form}
        className={props.wide ? "dialog wide" : "dialog"}
        role="dialog"
        aria-modal="true"
        aria-label={props.title}
        onMouseDown={(event) => event.stopPropagation()}
        onKeyDown={keyDown}
        onSubmit={submit}
      >
        <h2>{props.title}</h2>
        {props.children}
        {error ? (
          <div className="error-box" role="alert">
            {errorMessage(error)}
          </div>
        ) : null}
        <div className="dialog-actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          {/* Not disabled while busy (a second submit is ignored), so focus stays on it for the keyboard. */}
          <button type="submit" className="primary" disabled={!props.canSubmit} aria-busy={busy}>
            {props.submitLabel}
          </button>
        </div>
      </form>
    </div>
  );
}

/** A modal form with one text field: create and rename dialogs. */
export function PromptDialog(props: {
  title: string;
  label: string;
  initial?: string;
  submitLabel: string;
  onSubmit: (value: string) => Promise<unknown>;
  onClose: () => void;
}) {
  const [value, setValue] = useState(props.initial ?? "");
  return (
    <FormDialog title={props.title} submitLabel={props.submitLabel} canSubmit={!!value.trim()} onSubmit={() => props.onSubmit(value.trim())} onClose={props.onClose}>
      <label>
        {props.label}
        <input value={value} onChange={(event) => setValue(event.target.value)} />
      </label>
    </FormDialog>
  );
}

/** Key/value rows for the tags of a new object; empty keys are dropped by `filledTags`. */
export function TagFields({ tags, onChange }: { tags: Tag[]; onChange: (tags: Tag[]) => void }) {
  const set = (index: number, field: keyof Tag, value: string) => onChange(tags.map((tag, at) => (at === index ? { ...tag, [field]: value } : tag)));
  return (
    <fieldset className="tag-fields">
      <legend>Tags</legend>
      {tags.map((tag, index) => (
        <div key={index} className="toolbar">
          <input aria-label={`Tag ${index + 1} key`} placeholder="key" value={tag.key} onChange={(event) => set(index, "key", event.target.value)} />
          <input aria-label={`Tag ${index + 1} value`} placeholder="value" value={tag.value} onChange={(event) => set(index, "value", event.target.value)} />
          <button type="button" aria-label={`Remove tag ${index + 1}`} onClick={() => onChange(tags.filter((_, at) => at !== index))}>
            Remove
          </button>
        </div>
      ))}
      <div>
        <button type="button" onClick={() => onChange([...tags, { key: "", value: "" }])}>
          Add a tag
        </button>
      </div>
    </fieldset>
  );
}

export const filledTags = (tags: Tag[]) => tags.map((tag) => ({ key: tag.key.trim(), value: tag.value })).filter((tag) => tag.key);
