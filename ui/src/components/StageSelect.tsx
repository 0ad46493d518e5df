import { useState } from "react";
import { STAGES, transitionStage } from "../registryApi";
import { ErrorBox } from "./Feedback";

/** Stage of a model version as a select; choosing one transitions the version on the server. */
export function StageSelect(props: { name: string; version: string; stage?: string; onChanged: () => void; withArchive?: boolean }) {
  const [error, setError] = useState<unknown>();
  const [archive, setArchive] = useState(false);
  return (
    <span className="toolbar">
      <select
        aria-label={`Stage of version ${props.version}`}
        value={props.stage ?? "None"}
        onChange={async (event) => {
          setError(undefined);
          try {
            await transitionStage(props.name, props.version, event.target.value, archive);
            props.onChanged();
          } catch (failure) {
            setError(failure);
          }
        }}
      >
        {STAGES.map((stage) => (
          <option key={stage} value={stage}>
            {stage}
          </option>
        ))}
      </select>
      {props.withArchive ? (
        <label>
          <input type="checkbox" checked={archive} onChange={(event) => setArchive(event.target.checked)} />
          Archive other versions in that stage
        </label>
      ) : null}
      <ErrorBox error={error} />
    </span>
  );
}
