import { useEffect, useRef, useState } from "react";
import { errorMessage } from "../api";

/** A modal form with one text field: create and rename dialogs. Escape closes it; errors stay inline. */
export function PromptDialog(props: {
  title: string;
  label: string;
  initial?: string;
  submitLabel: string;
  onSubmit: (value: string) => Promise<unknown>;
  onClose: () => void;
}) {
  const [value, setValue] = useState(props.initial ?? "");
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    input.current?.focus();
    input.current?.select();
  }, []);
  async function submit(event: React.FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await props.onSubmit(value.trim());
      props.onClose();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }
  return (
    <div className="dialog-backdrop" onMouseDown={props.onClose}>
      <form
        className="dialog"
        role="dialog"
        aria-modal="true"
        aria-label={props.title}
        onMouseDown={(event) => event.stopPropagation()}
        onKeyDown={(event) => event.key === "Escape" && props.onClose()}
        onSubmit={submit}
      >
        <h2>{props.title}</h2>
        <label>
          {props.label}
          <input ref={input} value={value} onChange={(event) => setValue(event.target.value)} />
        </label>
        {error ? (
          <div className="error-box" role="alert">
            {errorMessage(error)}
          </div>
        ) : null}
        <div className="dialog-actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy || !value.trim()}>
            {props.submitLabel}
          </button>
        </div>
      </form>
    </div>
  );
}
