export function KeyValueTable({ rows, label }: { rows: [string, React.ReactNode][]; label: string }) {
  return (
    <table className="kv-table" aria-label={label}>
      <tbody>
        {rows.map(([key, value]) => (
          <tr key={key}>
            <th scope="row">{key}</th>
            <td>{value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
