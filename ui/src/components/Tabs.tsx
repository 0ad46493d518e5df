import { useSearchParams } from "react-router-dom";

/** Tabs kept in the URL (`?tab=`), so each tab is a deep link and back returns to the previous one. */
export function useTab(tabs: readonly string[], fallback: string): [string, (tab: string) => void] {
  const [search, setSearch] = useSearchParams();
  const current = search.get("tab");
  const tab = current && tabs.includes(current) ? current : fallback;
  const select = (next: string) => {
    const copy = new URLSearchParams(search);
    copy.set("tab", next);
    for (const key of [...copy.keys()]) if (key !== "tab") copy.delete(key);
    setSearch(copy);
  };
  return [tab, select];
}

export function TabBar({ tabs, current, onSelect, labels }: { tabs: readonly string[]; current: string; onSelect: (tab: string) => void; labels?: Record<string, string> }) {
  return (
    <div className="tabs" role="tablist">
      {tabs.map((tab) => (
        <button
          key={tab}
          role="tab"
          aria-selected={tab === current}
          className={tab === current ? "tab active" : "tab"}
          onClick={() => onSelect(tab)}
        >
          {labels?.[tab] ?? tab[0].toUpperCase() + tab.slice(1)}
        </button>
      ))}
    </div>
  );
}
