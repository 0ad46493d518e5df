import { Link } from "react-router-dom";
import { useDocumentTitle } from "../lib/useDocumentTitle";

export function PlaceholderPage({ title }: { title: string }) {
  useDocumentTitle(title);
  return (
    <section className="page">
      <h1>{title}</h1>
      <p className="muted">This page is not built yet.</p>
    </section>
  );
}

export function NotFoundPage() {
  useDocumentTitle("Not found");
  return (
    <section className="page">
      <h1>Page not found</h1>
      <p>
        <Link to="/experiments">Go to experiments</Link>
      </p>
    </section>
  );
}
