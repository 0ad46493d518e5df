import { NavLink, Outlet } from "react-router-dom";

/** Navigation entries of the app shell; a new top-level page adds one row here and one route in routes.tsx. */
export const NAV_ITEMS = [
  { to: "/experiments", label: "Experiments" },
  { to: "/models", label: "Models" },
  { to: "/prompts", label: "Prompts" },
  { to: "/traces", label: "Traces" },
] as const;

export function AppShell() {
  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <NavLink to="/" className="brand" aria-label="ferroflow home">
          ferroflow
        </NavLink>
        <nav aria-label="Main">
          {NAV_ITEMS.map((item) => (
            <NavLink key={item.to} to={item.to} className={({ isActive }) => (isActive ? "nav-link active" : "nav-link")}>
              {item.label}
            </NavLink>
          ))}
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}
