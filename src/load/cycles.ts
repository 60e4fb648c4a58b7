// Cycle detection over stage references, shared by validation (to report) and the graph (to guard).
/** Each elementary cycle found by DFS, as a stage list closing on its first stage ("a -> b -> a"). */
export function findCycles(names: string[], upstream: Map<string, string[]>): string[][] {
  const state = new Map<string, 0 | 1 | 2>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const visit = (n: string) => {
    state.set(n, 1);
    stack.push(n);
    for (const u of upstream.get(n) ?? []) {
      if (state.get(u) === 1) {
        // The stack runs along reads (n reads u), so it already is in reading direction: a reads b ... reads a.
        const ring = stack.slice(stack.indexOf(u));
        const key = [...ring].sort().join(',');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...ring, ring[0]]);
        }
      } else if (!state.get(u)) visit(u);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of names) if (!state.get(n)) visit(n);
  return cycles;
}
