import * as api from "../api";
import { useAsync } from "./useAsync";

/** Several runs by id (in the order given); a missing run fails the whole load with its error. */
export function useRuns(runIds: string[]) {
  return useAsync(() => Promise.all(runIds.map((id) => api.getRun(id))), [runIds.join(",")]);
}

export function useRunIdsParam(search: URLSearchParams): string[] {
  return (search.get("runs") ?? "").split(",").filter(Boolean);
}
