import { createHash } from 'node:crypto';

/** Unicode NFKC, lower case, collapsed whitespace: the form that ids and duplicate signatures hash. */
export function normalizeText(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
}

/**
 * "a"/"an" chosen by the sound the phrase starts with (a vowel letter, save "uni-", "use-", "eu-",
 * "one"; a silent h in "hour", "honest", "heir"), keeping the original article's capital.
 */
export function withArticle(phrase: string, original = 'a'): string {
  const vowelSound = (/^[aeiou]/i.test(phrase) && !/^(?:uni|use|usu|eu|one\b)/i.test(phrase)) || /^(?:hour|honest|heir)/i.test(phrase);
  const article = vowelSound ? 'an' : 'a';
  return `${original.startsWith('A') ? article[0]?.toUpperCase() + article.slice(1) : article} ${phrase}`;
}

/** The city part of a sampled locale ("Manila, Philippines" → "Manila"). */
export function cityOf(locale: string): string {
  return locale.split(',')[0]?.trim() || locale;
}

/** Ids are 32 hex chars of sha-256 over NUL-joined parts, so no two part lists collide by concatenation. */
export function hashId(...parts: (string | number)[]): string {
  return createHash('sha256').update(parts.map(String).join('\u0000')).digest('hex').slice(0, 32);
}

/**
 * A small deterministic PRNG (mulberry32) seeded from a string: the same seed text always samples
 * the same attributes, so re-runs and re-deliveries produce the same persona.
 */
export function rng(seed: string): () => number {
  let a = createHash('sha256').update(seed).digest().readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pick<T>(random: () => number, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

/** Weighted choice over [value, weight] pairs. */
export function pickWeighted<T>(random: () => number, items: readonly (readonly [T, number])[]): T {
  const total = items.reduce((s, [, w]) => s + w, 0);
  let r = random() * total;
  for (const [value, weight] of items) {
    r -= weight;
    if (r < 0) return value;
  }
  const last = items[items.length - 1];
  if (!last) throw new Error('pick from an empty list');
  return last[0];
}

export function pickDistinct<T>(random: () => number, items: readonly T[], n: number): T[] {
  const pool = [...items];
  const out: T[] = [];
  while (out.length < n && pool.length > 0) out.push(pool.splice(Math.floor(random() * pool.length), 1)[0] as T);
  return out;
}

const STOPWORDS = new Set(('a an and are as at be been but by can could did do does for from had has have he her his how i if in into is it its '
  + 'just me more most my no not of on or our out over she so some such than that the their them then there these they this those to too up us '
  + 'very was we were what when where which while who why will with would you your about after all also any because before between both during '
  + 'each few further here itself many may might much must never now off once only other own same should since still through under until upon '
  + 'whom yet one two new like get got make made use used using way well even back first last long great little own right big high different '
  + 'small large next early young important public bad able said says say will shall being were every another').split(' '));

/** The seed's salient terms: content words ranked by frequency, then length (a cheap stand-in for TF-IDF on one document). */
export function salientTerms(text: string, n: number): string[] {
  const counts = new Map<string, number>();
  for (const word of text.toLowerCase().match(/[\p{L}][\p{L}'-]{2,}/gu) ?? []) {
    const w = word.replace(/'s$/, '');
    if (STOPWORDS.has(w) || w.length < 4) continue;
    counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1] || b[0].length - a[0].length || a[0].localeCompare(b[0])).slice(0, n).map(([w]) => w);
}
