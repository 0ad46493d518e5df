/** One line of a line diff: kept in both, only in the old text, or only in the new one. */
export interface DiffLine {
  kind: "same" | "removed" | "added";
  text: string;
  oldNumber?: number;
  newNumber?: number;
}

/** A line diff by longest common subsequence (prompt templates are short, so O(n·m) is fine). */
export function lineDiff(before: string[], after: string[]): DiffLine[] {
  const n = before.length;
  const m = after.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) lcs[i][j] = before[i] === after[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && before[i] === after[j]) {
      out.push({ kind: "same", text: before[i], oldNumber: i + 1, newNumber: j + 1 });
      i++;
      j++;
    } else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      // Removed lines come before the added ones that replace them, as in a unified diff.
      out.push({ kind: "removed", text: before[i], oldNumber: i + 1 });
      i++;
    } else {
      out.push({ kind: "added", text: after[j], newNumber: j + 1 });
      j++;
    }
  }
  return out;
}
