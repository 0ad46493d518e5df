import { Navigate, useParams, useSearchParams } from "react-router-dom";
import * as api from "../api";
import { ErrorBox, Loading } from "../components/Feedback";
import { useAsync } from "../lib/useAsync";

/**
 * `/runs/:runId`: a link to a run by its id alone (a model version knows its run, not the run's
 * experiment) that looks the experiment up and replaces itself with the run page's URL.
 */
export function RunRedirect() {
  const { runId = "" } = useParams();
  const [search] = useSearchParams();
  const run = useAsync(() => api.getRun(runId), [runId]);
  if (run.data) {
    const query = search.toString();
    return <Navigate replace to={`/experiments/${run.data.info.experiment_id}/runs/${runId}${query ? `?${query}` : ""}`} />;
  }
  return (
    <section className="page">
      <ErrorBox error={run.error} />
      {run.loading ? <Loading /> : null}
    </section>
  );
}
