import type { Finding } from './codes.ts';
import { sentencesOf, type CheckInput } from './input.ts';

/**
 * Time spans the age makes impossible: "in the pediatric nursing field for 64 years" at 64, "a nurse
 * since 1992" for a 25-year-old. Nobody works before WORKING_AGE; anyone may have lived somewhere all
 * their life, so spans of residence are held to the age itself.
 */
const WORKING_AGE = 14;

const UNITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** "64", "sixty-four", "thirty", "a dozen", "two decades" (in years). */
export function yearsIn(amount: string, unit: string): number | undefined {
  const a = amount.toLowerCase().replace(/\s+/g, '-');
  let n: number | undefined;
  if (/^\d+$/.test(a)) n = Number(a);
  else if (a === 'a' || a === 'an') n = 1;
  else if (a === 'a-dozen' || a === 'dozen') n = 12;
  else if (UNITS.includes(a)) n = UNITS.indexOf(a);
  else {
    const [tens = '', units] = a.split('-');
    const t = TENS.indexOf(tens);
    const u = units === undefined ? 0 : UNITS.indexOf(units);
    if (t >= 2 && u >= 0 && u <= 9) n = t * 10 + u;
  }
  if (n === undefined) return undefined;
  return /^decades?$/i.test(unit) ? n * 10 : n;
}

const NUMBER = '\\d{1,3}|a dozen|a|an|(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[- ](?:one|two|three|four|five|six|seven|eight|nine))?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen';
const SPAN = new RegExp(`\\b(${NUMBER})(?:\\+| or more| plus)?[- ](years?|decades?)\\b`, 'gi');
const SINCE_YEAR = /\b(since|in|from|started in|began in|back in)\s+((?:19|20)\d\d)\b/gi;
const BORN_YEAR = /\bborn in ((?:19|20)\d\d)\b/i;
const RESIDENCE = /\b(?:liv(?:e|es|ed|ing)|grew up|grown up|resid|born|called? home|home for|known|married|raised)\w*\b/i;
const AGO = /^\s*ago\b|^\s*old\b|^-old\b/i;
/** A span that is about something other than the persona's own past ("a 30-year mortgage", "for the next 20 years"). */
const NOT_PAST = /\b(?:next|coming|another|more|plan|plans|planning|will|would|hopes?|wants?|mortgage|loan|warranty|old (?:house|car|building|truck))\b/i;
const CAREER_START = /\b(?:since|started|began|joined|opened|founded|has (?:been|worked|run|driven|taught|farmed|served)|have been|working|worked|career|job|practic)/i;

export function timeSpans({ persona }: CheckInput): Finding[] {
  const found: Finding[] = [];
  const { age } = persona;
  const year = new Date(persona.provenance.createdAt).getUTCFullYear();
  for (const sentence of sentencesOf(persona.description)) {
    for (const m of sentence.matchAll(SPAN)) {
      const years = yearsIn(m[1] ?? '', m[2] ?? '');
      if (years === undefined || m.index === undefined) continue;
      const after = sentence.slice(m.index + m[0].length);
      // "a 30-year-old", "20 years ago": an age or a date, not a span of the persona's life.
      if (AGO.test(after)) continue;
      if (NOT_PAST.test(sentence.slice(Math.max(0, m.index - 40), m.index + m[0].length + 20))) continue;
      const limit = RESIDENCE.test(sentence) ? age : age - WORKING_AGE;
      if (years > limit) found.push({ code: 'CAREER_SPAN', message: `"${m[0]}" in a text about a ${age}-year-old: ${RESIDENCE.test(sentence) ? 'longer than their life' : `would have begun before age ${WORKING_AGE}`}` });
    }
    for (const m of sentence.matchAll(SINCE_YEAR)) {
      const started = Number(m[2]);
      if (!CAREER_START.test(sentence) || started > year) continue;
      const ageThen = age - (year - started);
      const limit = RESIDENCE.test(sentence) ? 0 : WORKING_AGE;
      if (ageThen < limit) found.push({ code: 'CAREER_SPAN', message: `"${m[0]}" would put the ${age}-year-old at ${ageThen} then (created ${year})` });
    }
    const born = BORN_YEAR.exec(sentence);
    if (born && Math.abs(year - Number(born[1]) - age) > 1) found.push({ code: 'CAREER_SPAN', message: `"${born[0]}" makes them ${year - Number(born[1])} in ${year}, not ${age}` });
  }
  return found;
}
