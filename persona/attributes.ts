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

/** Occupations with the youngest and oldest plausible age, which the coherence checks reuse. */
export const OCCUPATIONS: readonly { title: string; minAge: number; maxAge: number }[] = [
  { title: 'pediatric nurse', minAge: 22, maxAge: 70 }, { title: 'high school chemistry teacher', minAge: 23, maxAge: 70 },
  { title: 'software engineer', minAge: 20, maxAge: 75 }, { title: 'long-haul truck driver', minAge: 21, maxAge: 75 },
  { title: 'bakery owner', minAge: 22, maxAge: 85 }, { title: 'graduate student in linguistics', minAge: 21, maxAge: 60 },
  { title: 'retired civil engineer', minAge: 58, maxAge: 90 }, { title: 'dairy farmer', minAge: 18, maxAge: 85 },
  { title: 'emergency room physician', minAge: 27, maxAge: 75 }, { title: 'public librarian', minAge: 22, maxAge: 75 },
  { title: 'freelance illustrator', minAge: 18, maxAge: 85 }, { title: 'union electrician', minAge: 19, maxAge: 70 },
  { title: 'bank loan officer', minAge: 22, maxAge: 70 }, { title: 'community organizer', minAge: 18, maxAge: 85 },
  { title: 'hotel housekeeper', minAge: 18, maxAge: 72 }, { title: 'startup founder', minAge: 19, maxAge: 75 },
  { title: 'museum curator', minAge: 25, maxAge: 80 }, { title: 'physical therapist', minAge: 24, maxAge: 72 },
  { title: 'restaurant line cook', minAge: 18, maxAge: 70 }, { title: 'investigative journalist', minAge: 21, maxAge: 80 },
  { title: 'retired schoolteacher', minAge: 55, maxAge: 90 }, { title: 'wind turbine technician', minAge: 19, maxAge: 65 },
  { title: 'data analyst at a logistics firm', minAge: 21, maxAge: 70 }, { title: 'pharmacist', minAge: 25, maxAge: 75 },
  { title: 'undergraduate studying economics', minAge: 18, maxAge: 30 }, { title: 'small-town mayor', minAge: 25, maxAge: 85 },
  { title: 'wedding photographer', minAge: 19, maxAge: 75 }, { title: 'commercial fisherman', minAge: 18, maxAge: 75 },
  { title: 'social worker', minAge: 22, maxAge: 72 }, { title: 'airline pilot', minAge: 23, maxAge: 65 },
  { title: 'stay-at-home parent', minAge: 19, maxAge: 60 }, { title: 'car mechanic', minAge: 18, maxAge: 75 },
  { title: 'church choir director', minAge: 22, maxAge: 88 }, { title: 'urban planner', minAge: 24, maxAge: 72 },
  { title: 'retired army sergeant', minAge: 40, maxAge: 90 }, { title: 'yoga instructor', minAge: 19, maxAge: 80 },
  { title: 'construction site manager', minAge: 25, maxAge: 70 }, { title: 'court interpreter', minAge: 23, maxAge: 75 },
  { title: 'beekeeper', minAge: 18, maxAge: 90 }, { title: 'video game designer', minAge: 20, maxAge: 70 },
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
    name: `${pick(random, FIRST_NAMES)} ${pick(random, SURNAMES)}`,
    age,
    occupation: occupation.title,
    locale: pickWeighted(random, LOCALES),
    traits: pickDistinct(random, TRAITS, 3),
    seedRelation: pickWeighted(random, SEED_RELATIONS),
  };
}
