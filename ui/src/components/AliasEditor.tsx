import { useState } from "react";
import type { Alias } from "../registryApi";
import { ErrorBox } from "./Feedback";
import { useAction } from "../lib/useAction";

/** Aliases of a registered model: a chip each (with remove) and a form to point an alias at a version. */
export function AliasEditor(props: {
  aliases: Alias[];
  versions: string[];
  fixedVersion?: string;
  onSet: (alias: string, version: string) => Promise<unknown>;
  onDelete: (alias: string) => Promise<unknown>;
}) {
  const [alias, setAlias] = useState("");
  const [version, setVersion] = useState(props.fixedVersion ?? props.versions[0] ?? "");
  const [error, act] = useAction();
  return (
    <div className="alias-editor">
      <div className="alias-list" aria-label="Aliases" role="list">
        {props.aliases.length === 0 ? <span className="muted">No aliases.</span> : null}
        {props.aliases.map((entry) => (
          <span key={entry.alias} className="alias-chip" role="listitem">
            @{entry.alias} → v{entry.version}
            <button aria-label={`Remove alias ${entry.alias}`} title="Remove alias" onClick={() => act(() => props.onDelete(entry.alias))}>
              ×
            </button>
          </span>
        ))}
      </div>
      <form
        className="toolbar"
        style={{ marginTop: "0.5rem" }}
        onSubmit={async (event) => {
          event.preventDefault();
          if (await act(() => props.onSet(alias.trim(), props.fixedVersion ?? version))) setAlias("");
        }}
      >
        <input aria-label="Alias name" placeholder="alias" value={alias} onChange={(event) => setAlias(event.target.value)} />
        {props.fixedVersion ? null : (
          <label>
            version
            <select aria-label="Alias version" value={version} onChange={(event) => setVersion(event.target.value)}>
              {props.versions.map((item) => (
                <option key={item} value={item}>
                  {item}
                </option>
              ))}
            </select>
          </label>
        )}
        <button type="submit" disabled={!alias.trim() || !(props.fixedVersion ?? version)}>
          Set alias
        </button>
      </form>
      <ErrorBox error={error} />
    </div>
  );
}
