import { Navigate, type RouteObject } from "react-router-dom";
import { AppShell } from "./App";
import { NotFoundPage } from "./pages/Placeholder";
import { ExperimentsPage } from "./pages/ExperimentsPage";
import { RunsPage } from "./pages/RunsPage";
import { RunPage } from "./pages/RunPage";
import { RunRedirect } from "./pages/RunRedirect";
import { ComparePage } from "./pages/ComparePage";
import { MetricPage } from "./pages/MetricPage";
import { RegistryListPage } from "./pages/RegistryListPage";
import { ModelPage } from "./pages/ModelPage";
import { ModelVersionPage } from "./pages/ModelVersionPage";
import { PromptPage } from "./pages/PromptPage";
import { TracesPage } from "./pages/TracesPage";
import { TracePage } from "./pages/TracePage";

/**
 * Every page is a URL (deep link); state worth sharing (filters, tabs, selected runs) sits in the query
 * string, so the browser's back button walks through it.
 *
 *   /experiments                                    experiment list
 *   /experiments/:experimentIds                     runs of one or more experiments (ids joined by ",")
 *   /experiments/:experimentId/runs/:runId          run page (?tab=overview|params|metrics|tags|datasets|artifacts)
 *   /runs/:runId                                    a run by id alone: redirects to its run page
 *   /metric?runs=a,b&key=loss                       metric chart of several runs
 *   /compare?runs=a,b,c                             compare view (params, metrics, parallel coordinates, scatter)
 *   /models?q=                                      registered models (search in ?q=)
 *   /models/:name?tab=versions|aliases|tags         registered model
 *   /models/:name/versions/:version                 model version
 *   /prompts?q=                                     prompts (registered models tagged mlflow.prompt.is_prompt)
 *   /prompts/:name?version=N | ?view=diff&from=A&to=B   prompt versions, template, aliases, tags, diff
 *   /traces?experiment=1&status=&from=&to=&tag=k=v&usage=1&min_tokens=&max_cost=&filter=   trace table
 *   /traces/:traceId?span=ID                        trace: span tree, timeline, span details, assessments
 */
export const routes: RouteObject[] = [
  {
    path: "/",
    element: <AppShell />,
    children: [
      { index: true, element: <Navigate to="/experiments" replace /> },
      { path: "experiments", element: <ExperimentsPage /> },
      { path: "experiments/:experimentIds", element: <RunsPage /> },
      { path: "experiments/:experimentId/runs/:runId", element: <RunPage /> },
      { path: "runs/:runId", element: <RunRedirect /> },
      { path: "metric", element: <MetricPage /> },
      { path: "compare", element: <ComparePage /> },
      { path: "models", element: <RegistryListPage kind="models" key="models" /> },
      { path: "models/:name", element: <ModelPage /> },
      { path: "models/:name/versions/:version", element: <ModelVersionPage /> },
      { path: "prompts", element: <RegistryListPage kind="prompts" key="prompts" /> },
      { path: "prompts/:name", element: <PromptPage /> },
      { path: "traces", element: <TracesPage /> },
      { path: "traces/:traceId", element: <TracePage /> },
      { path: "*", element: <NotFoundPage /> },
    ],
  },
];
