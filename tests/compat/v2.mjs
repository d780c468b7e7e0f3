// Runs ONE case through Prodia's official v2 client (npm "prodia", "prodia/v2") and prints ONE JSON line.
// Usage: node v2.mjs <case> <baseUrl> <token> [inputImagePath]
import { readFile } from "node:fs/promises";
import { createProdia, ProdiaUserError, ProdiaCapacityError, ProdiaBadResponseError } from "prodia/v2";

const [name, baseUrl, token, inputPath] = process.argv.slice(2);
const prompt = "puppies in a cloud, 4k";

// case -> [client options, job params, job options]; the calls are those of the client's own README and tests.
const cases = {
  default: [{}, { type: "inference.flux-fast.schnell.txt2img.v2", config: { prompt } }, {}],
  png: [
    {},
    { type: "inference.flux.schnell.txt2img.v1", config: { prompt, steps: 1, width: 1024, height: 1024 } },
    { accept: "image/png" },
  ],
  "bad-config": [{}, { type: "inference.flux.schnell.txt2img.v1", config: { prompt, steps: 1000 } }, {}],
  "no-type": [{ maxRetries: 2 }, { config: { prompt } }, {}],
  img2img: [{}, { type: "inference.flux-2.pro.img2img.v1", config: { prompt } }, { inputs: "file" }],
};

const hex = (bytes) => Buffer.from(bytes.subarray(0, 8)).toString("hex");

async function run() {
  if (!(name in cases)) throw new Error(`unknown case ${name}`);
  const [clientOptions, params, jobOptions] = cases[name];
  if (jobOptions.inputs) jobOptions.inputs = [new Uint8Array(await readFile(inputPath))];
  const prodia = createProdia({ token, baseUrl, ...clientOptions });
  try {
    const job = await prodia.job(params, jobOptions);
    const image = await job.uint8Array();
    return { ok: true, jobId: job.job.id, state: job.job.state, magic: hex(image), length: image.length };
  } catch (error) {
    const known = [ProdiaUserError, ProdiaCapacityError, ProdiaBadResponseError].find((cls) => error instanceof cls);
    return { error: known ? known.name : error.constructor.name, message: String(error.message) };
  }
}

process.stdout.write(JSON.stringify(await run()) + "\n");
