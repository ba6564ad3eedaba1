import type { SeedRelation } from '../schemas/types.generated.ts';
import { pick, pickDistinct, pickWeighted, rng } from './text.ts';

/**
 * Grounded sampling (Nemotron-Personas style): demographic and behavioral attributes are drawn from
 * explicit distributions first, and the text is written around them, so the population's make-up
 * is controlled here and not left to whatever the model prefers.
 */
export interface SampledAttributes {
  name: string;
  age: number;
  occupation: string;
  locale: string;
  traits: string[];
  seedRelation: SeedRelation;
}

/** Age brackets weighted roughly like an adult population; the age is uniform inside a bracket. */
export const AGE_BRACKETS: readonly (readonly [readonly [number, number], number])[] = [
  [[18, 24], 12], [[25, 34], 18], [[35, 44], 17], [[45, 54], 16], [[55, 64], 15], [[65, 79], 15], [[80, 90], 7],
];

export type OccupationField = 'health' | 'education' | 'technology' | 'transport' | 'food' | 'academia' | 'engineering' | 'agriculture' | 'arts' | 'trades' | 'finance' | 'civic' | 'hospitality' | 'media' | 'home';

export interface Occupation {
  title: string;
  field: OccupationField;
  minAge: number;
  maxAge: number;
}

/** Occupations with their field (colleagues and rivals share it) and the youngest and oldest plausible age, which the coherence checks reuse. */
export const OCCUPATIONS: readonly Occupation[] = [
  { title: 'pediatric nurse', field: 'health', minAge: 22, maxAge: 70 }, { title: 'high school chemistry teacher', field: 'education', minAge: 23, maxAge: 70 },
  { title: 'software engineer', field: 'technology', minAge: 20, maxAge: 75 }, { title: 'long-haul truck driver', field: 'transport', minAge: 21, maxAge: 75 },
  { title: 'bakery owner', field: 'food', minAge: 22, maxAge: 85 }, { title: 'graduate student in linguistics', field: 'academia', minAge: 21, maxAge: 60 },
  { title: 'retired civil engineer', field: 'engineering', minAge: 58, maxAge: 90 }, { title: 'dairy farmer', field: 'agriculture', minAge: 18, maxAge: 85 },
  { title: 'emergency room physician', field: 'health', minAge: 27, maxAge: 75 }, { title: 'public librarian', field: 'education', minAge: 22, maxAge: 75 },
  { title: 'freelance illustrator', field: 'arts', minAge: 18, maxAge: 85 }, { title: 'union electrician', field: 'trades', minAge: 19, maxAge: 70 },
  { title: 'bank loan officer', field: 'finance', minAge: 22, maxAge: 70 }, { title: 'community organizer', field: 'civic', minAge: 18, maxAge: 85 },
  { title: 'hotel housekeeper', field: 'hospitality', minAge: 18, maxAge: 72 }, { title: 'startup founder', field: 'technology', minAge: 19, maxAge: 75 },
  { title: 'museum curator', field: 'arts', minAge: 25, maxAge: 80 }, { title: 'physical therapist', field: 'health', minAge: 24, maxAge: 72 },
  { title: 'restaurant line cook', field: 'food', minAge: 18, maxAge: 70 }, { title: 'investigative journalist', field: 'media', minAge: 21, maxAge: 80 },
  { title: 'retired schoolteacher', field: 'education', minAge: 55, maxAge: 90 }, { title: 'wind turbine technician', field: 'trades', minAge: 19, maxAge: 65 },
  { title: 'data analyst at a logistics firm', field: 'technology', minAge: 21, maxAge: 70 }, { title: 'pharmacist', field: 'health', minAge: 25, maxAge: 75 },
  { title: 'undergraduate studying economics', field: 'academia', minAge: 18, maxAge: 30 }, { title: 'small-town mayor', field: 'civic', minAge: 25, maxAge: 85 },
  { title: 'wedding photographer', field: 'arts', minAge: 19, maxAge: 75 }, { title: 'commercial fisherman', field: 'agriculture', minAge: 18, maxAge: 75 },
  { title: 'social worker', field: 'civic', minAge: 22, maxAge: 72 }, { title: 'airline pilot', field: 'transport', minAge: 23, maxAge: 65 },
  { title: 'stay-at-home parent', field: 'home', minAge: 19, maxAge: 60 }, { title: 'car mechanic', field: 'trades', minAge: 18, maxAge: 75 },
  { title: 'church choir director', field: 'arts', minAge: 22, maxAge: 88 }, { title: 'urban planner', field: 'engineering', minAge: 24, maxAge: 72 },
  { title: 'retired army sergeant', field: 'civic', minAge: 40, maxAge: 90 }, { title: 'yoga instructor', field: 'health', minAge: 19, maxAge: 80 },
  { title: 'construction site manager', field: 'trades', minAge: 25, maxAge: 70 }, { title: 'court interpreter', field: 'civic', minAge: 23, maxAge: 75 },
  { title: 'beekeeper', field: 'agriculture', minAge: 18, maxAge: 90 }, { title: 'video game designer', field: 'technology', minAge: 20, maxAge: 70 },
];

export const LOCALES: readonly (readonly [string, number])[] = [
  ['Manila, Philippines', 4], ['Lagos, Nigeria', 4], ['Sao Paulo, Brazil', 4], ['Mumbai, India', 5], ['Jakarta, Indonesia', 4],
  ['Mexico City, Mexico', 4], ['Cairo, Egypt', 3], ['Istanbul, Turkey', 3], ['Berlin, Germany', 3], ['Toronto, Canada', 3],
  ['Ohio, United States', 4], ['Texas, United States', 4], ['Seoul, South Korea', 3], ['Osaka, Japan', 3], ['Nairobi, Kenya', 3],
  ['Lyon, France', 2], ['Krakow, Poland', 2], ['Hanoi, Vietnam', 3], ['Buenos Aires, Argentina', 2], ['Glasgow, Scotland', 2],
  ['rural Andalusia, Spain', 2], ['Melbourne, Australia', 2], ['Karachi, Pakistan', 3], ['Dhaka, Bangladesh', 3], ['Lima, Peru', 2],
];

export const TRAITS: readonly string[] = [
  'meticulous', 'curious', 'skeptical', 'warm', 'impatient', 'frugal', 'ambitious', 'soft-spoken', 'stubborn', 'playful',
  'pragmatic', 'anxious', 'generous', 'competitive', 'nostalgic', 'outspoken', 'private', 'restless', 'devout', 'sarcastic',
  'patient', 'idealistic', 'organized', 'spontaneous', 'cautious', 'sociable', 'introspective', 'resourceful', 'blunt', 'optimistic',
];

const FIRST_NAMES: readonly string[] = [
  'Amara', 'Luis', 'Mei', 'Tomasz', 'Priya', 'Kwame', 'Sofia', 'Hiroshi', 'Fatima', 'Daniel', 'Ngozi', 'Mateo', 'Ji-woo', 'Elena',
  'Omar', 'Grace', 'Arjun', 'Ines', 'Tunde', 'Hannah', 'Minh', 'Carmen', 'Yusuf', 'Claire', 'Rafael', 'Aisha', 'Pavel', 'Lucia',
  'Kenji', 'Zanele', 'Marcus', 'Leila', 'Diego', 'Anika', 'Samuel', 'Rosa', 'Farhan', 'Ingrid', 'Thabo', 'Noor',
];
const SURNAMES: readonly string[] = [
  'Okafor', 'Reyes', 'Chen', 'Kowalski', 'Sharma', 'Mensah', 'Rossi', 'Tanaka', 'Haddad', 'Miller', 'Adeyemi', 'Silva', 'Park', 'Novak',
  'Farouk', 'Walsh', 'Iyer', 'Moreau', 'Balogun', 'Schmidt', 'Nguyen', 'Lopez', 'Demir', 'Dubois', 'Costa', 'Rahman', 'Ivanova', 'Garcia',
  'Sato', 'Dlamini', 'Bennett', 'Karimi', 'Torres', 'Lindqvist', 'Osei', 'Fernandez', 'Hossain', 'Berg', 'Khumalo', 'Aziz',
];

export const SEED_RELATIONS: readonly (readonly [SeedRelation, number])[] = [['READER', 4], ['WRITER', 2], ['ENTHUSIAST', 2], ['CRITIC', 1], ['SUBJECT', 1]];

/** Traits of TRAITS that cannot describe one person together. */
const EXCLUSIVE_TRAITS: readonly (readonly [string, string])[] = [['patient', 'impatient'], ['soft-spoken', 'outspoken']];

/** `n` distinct traits of TRAITS, never two that contradict each other. */
export function pickTraits(random: () => number, n: number): string[] {
  const chosen: string[] = [];
  const excluded = (t: string) => chosen.includes(t) || EXCLUSIVE_TRAITS.some(([a, b]) => (t === a && chosen.includes(b)) || (t === b && chosen.includes(a)));
  while (chosen.length < n) {
    const open = TRAITS.filter((t) => !excluded(t));
    if (open.length === 0) break;
    chosen.push(pick(random, open));
  }
  return chosen;
}

/** A full name; with `surname`, one of that family; never with the first name `avoid` (two people of one name read as one). */
export function sampleName(random: () => number, surname?: string, avoid?: string): string {
  return `${pick(random, FIRST_NAMES.filter((n) => n !== avoid))} ${surname ?? pick(random, SURNAMES)}`;
}

/** Samples attributes for one persona; deterministic in (seed id, generation index). */
export function sampleAttributes(seedId: string, generationIndex: number): SampledAttributes {
  const random = rng(`${seedId}:${generationIndex}`);
  const [lo, hi] = pickWeighted(random, AGE_BRACKETS);
  let age = lo + Math.floor(random() * (hi - lo + 1));
  // Draw the occupation among those plausible at this age, so sampled attributes never contradict each other.
  const fitting = OCCUPATIONS.filter((o) => age >= o.minAge && age <= o.maxAge);
  const occupation = pick(random, fitting.length > 0 ? fitting : OCCUPATIONS);
  age = Math.min(Math.max(age, occupation.minAge), occupation.maxAge);
  return {
    name: sampleName(random),
    age,
    occupation: occupation.title,
    locale: pickWeighted(random, LOCALES),
    traits: pickTraits(random, 3),
    seedRelation: pickWeighted(random, SEED_RELATIONS),
  };
}
