import { useState } from "react";

/**
 * The error of the last action a form ran: `run(action)` clears it, runs the action and keeps its error,
 * answering whether the action succeeded (so the caller can reset its fields).
 */
export function useAction(): [unknown, (action: () => Promise<unknown>) => Promise<boolean>] {
  const [error, setError] = useState<unknown>();
  async function run(action: () => Promise<unknown>) {
    setError(undefined);
    try {
      await action();
      return true;
    } catch (failure) {
      setError(failure);
      return false;
    }
  }
  return [error, run];
}
