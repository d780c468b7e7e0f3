// Runs ONE case through Prodia's official v1 client (npm "prodia") and prints ONE JSON line.
// Usage: node v1.mjs <case> <baseUrl> <apiKey>
import { createProdia } from "prodia";

const [name, base, apiKey] = process.argv.slice(2);
const prompt = "puppies in a cloud, 4k";
const prodia = createProdia({ apiKey, base });

// Submit, wait (the client polls every 250 ms), then download the image as any consumer would.
async function finished(job) {
  const result = await prodia.wait(job);
  const out = { ok: true, jobId: job.job, status: result.status, imageUrl: result.imageUrl ?? null };
  if (result.imageUrl) {
    const response = await fetch(result.imageUrl);
    const image = new Uint8Array(await response.arrayBuffer());
    Object.assign(out, { magic: Buffer.from(image.subarray(0, 8)).toString("hex"), length: image.length });
  }
  return out;
}

const cases = {
  generate: async () => finished(await prodia.generate({ prompt, steps: 20, cfg_scale: 7, seed: 42 })),
  xl: async () => finished(await prodia.xlGenerate({ prompt })),
  models: async () => ({ ok: true, models: await prodia.listModels() }),
  "bad-config": async () => finished(await prodia.generate({ prompt, steps: 1000 })),
};

async function run() {
  if (!(name in cases)) throw new Error(`unknown case ${name}`);
  try {
    return await cases[name]();
  } catch (error) {
    return { error: error.constructor.name, message: String(error.message) };
  }
}

process.stdout.write(JSON.stringify(await run()) + "\n");
