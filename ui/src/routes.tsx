import { Navigate, type RouteObject } from "react-router-dom";
import { AppShell } from "./App";
import { NotFoundPage, PlaceholderPage } from "./pages/Placeholder";
import { ExperimentsPage } from "./pages/ExperimentsPage";
import { RunsPage } from "./pages/RunsPage";
import { RunPage } from "./pages/RunPage";
import { ComparePage } from "./pages/ComparePage";
import { MetricPage } from "./pages/MetricPage";

/**
 * Every page is a URL (deep link); state worth sharing (filters, tabs, selected runs) sits in the query
 * string, so the browser's back button walks through it.
 *
 *   /experiments                                    experiment list
 *   /experiments/:experimentIds                     runs of one or more experiments (ids joined by ",")
 *   /experiments/:experimentId/runs/:runId          run page (?tab=overview|params|metrics|tags|datasets|artifacts)
 *   /metric?runs=a,b&key=loss                       metric chart of several runs
 *   /compare?runs=a,b,c                             compare view (params, metrics, parallel coordinates, scatter)
 *   /models, /prompts, /traces                      registry, prompts and traces pages
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
      { path: "metric", element: <MetricPage /> },
      { path: "compare", element: <ComparePage /> },
      { path: "models/*", element: <PlaceholderPage title="Models" /> },
      { path: "prompts/*", element: <PlaceholderPage title="Prompts" /> },
      { path: "traces/*", element: <PlaceholderPage title="Traces" /> },
      { path: "*", element: <NotFoundPage /> },
    ],
  },
];
