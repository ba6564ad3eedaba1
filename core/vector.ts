/** Vector maths shared by the embedders, the model server and population analytics. */

export function dot(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i += 1) s += (a[i] ?? 0) * (b[i] ?? 0);
  return s;
}

/** The unit vector in the direction of `v` (a zero vector is returned unchanged), so dot product and cosine agree. */
export function normalize(v: readonly number[]): number[] {
  const norm = Math.sqrt(dot(v, v));
  return norm === 0 ? [...v] : v.map((x) => x / norm);
}
