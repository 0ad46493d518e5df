/** Pretty JSON for values that may arrive as JSON text (span inputs, attributes) or as objects. */
export function JsonView({ value, maxHeight }: { value: unknown; maxHeight?: number }) {
  let shown = value;
  if (typeof value === "string") {
    try {
      shown = JSON.parse(value);
    } catch {
      shown = value;
    }
  }
  const text = typeof shown === "string" ? shown : JSON.stringify(shown, null, 2);
  return (
    <pre className="json-view" style={maxHeight ? { maxHeight } : undefined} tabIndex={0}>
      {text}
    </pre>
  );
}
