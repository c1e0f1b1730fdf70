// A procedural story corpus: short, grammatical stories generated from a seed, so that training
// runs need no downloaded data. The structure (names agree with pronouns, objects recur, events
// follow each other) gives a language model something real to learn beyond letter frequencies.

const NAMES: readonly [string, 'he' | 'she'][] = [
  ['Mia', 'she'], ['Tom', 'he'], ['Lena', 'she'], ['Sam', 'he'], ['Ava', 'she'], ['Leo', 'he'],
  ['Zoe', 'she'], ['Max', 'he'], ['Ida', 'she'], ['Ben', 'he'],
]; // prettier-ignore
const ANIMALS = ['cat', 'dog', 'bird', 'fox', 'frog', 'duck', 'rabbit', 'mouse'] as const;
const COLORS = ['red', 'blue', 'green', 'yellow', 'small', 'big', 'old', 'shiny'] as const;
const THINGS = ['ball', 'box', 'hat', 'kite', 'book', 'cup', 'key', 'boat'] as const;
const PLACES = [
  'the garden',
  'the park',
  'the forest',
  'the kitchen',
  'the river',
  'the hill',
  'the school',
  'the barn',
] as const;
const FEELINGS = ['happy', 'sad', 'tired', 'surprised', 'proud', 'scared', 'calm', 'excited'] as const;
const WEATHER = ['sunny', 'rainy', 'windy', 'cold', 'warm', 'quiet'] as const;

/** A small deterministic PRNG (mulberry32) so a seed always yields the same corpus. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** One story of three to six sentences. */
function story(r: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const [name, pron] = pick(NAMES);
  let [friend, fpron] = pick(NAMES);
  while (friend === name) [friend, fpron] = pick(NAMES);
  const animal = pick(ANIMALS);
  const thing = `${pick(COLORS)} ${pick(THINGS)}`;
  const place = pick(PLACES);
  const poss = pron === 'he' ? 'his' : 'her';
  const s: string[] = [];
  s.push(`It was a ${pick(WEATHER)} day.`);
  s.push(`${name} went to ${place} with ${poss} ${animal}.`);
  const event = Math.floor(r() * 3);
  if (event === 0) {
    s.push(`There ${name} found a ${thing}.`);
    s.push(`${cap(pron)} gave the ${thing} to ${friend}.`);
    s.push(`${friend} was ${pick(FEELINGS)} and said thank you.`);
  } else if (event === 1) {
    s.push(`The ${animal} ran away.`);
    s.push(`${name} looked for it in ${pick(PLACES)}.`);
    s.push(`${friend} helped ${pron === 'he' ? 'him' : 'her'}, and ${fpron} found the ${animal}.`);
  } else {
    s.push(`${name} and ${friend} played with a ${thing}.`);
    s.push(`Then the ${animal} took the ${thing}.`);
    s.push(`They laughed, and ${name} felt ${pick(FEELINGS)}.`);
  }
  if (r() < 0.5) s.push(`At night ${name} was ${pick(FEELINGS)}.`);
  return s.join(' ');
}

/** Generates `n` stories from `seed`, one per line. */
export function generateStories(n: number, seed = 1): string {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(story(r));
  return out.join('\n') + '\n';
}
