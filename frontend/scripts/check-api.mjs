// Fails on drift between the backend and the generated client:
//   1. openapi.json must equal what the backend prints today (`prefaudit openapi`), when the
//      backend is installed (PREFAUDIT_BIN, default ../.venv/bin/prefaudit);
//   2. src/api/schema.d.ts must be what openapi-typescript makes of openapi.json.
// Fix either with `npm run sync:api` and commit openapi.json and src/api/schema.d.ts together.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const FIX = "run `npm run sync:api` in frontend/ and commit openapi.json and src/api/schema.d.ts";
const bin = process.env.PREFAUDIT_BIN ?? "../.venv/bin/prefaudit";
const dir = mkdtempSync(join(tmpdir(), "prefaudit-api-"));
let failed = false;

try {
  if (existsSync(bin)) {
    const live = execFileSync(bin, ["openapi"], { encoding: "utf8", maxBuffer: 64 << 20 });
    const committed = readFileSync("openapi.json", "utf8");
    if (JSON.stringify(JSON.parse(live)) !== JSON.stringify(JSON.parse(committed))) {
      console.error(`openapi.json differs from \`${bin} openapi\`: the API changed; ${FIX}.`);
      failed = true;
    } else {
      console.log("openapi.json matches the backend");
    }
  } else {
    console.log(`${bin} not found: checking the generated types against openapi.json only`);
  }

  const fresh = join(dir, "schema.d.ts");
  execFileSync(
    "npx",
    ["openapi-typescript", "openapi.json", "--default-non-nullable", "false", "-o", fresh],
    { stdio: "pipe" },
  );
  if (readFileSync(fresh, "utf8") !== readFileSync("src/api/schema.d.ts", "utf8")) {
    try {
      execFileSync("diff", ["-u", "src/api/schema.d.ts", fresh], { stdio: "inherit" });
    } catch {
      // diff exits 1 when the files differ; its output is the point.
    }
    console.error(`src/api/schema.d.ts is out of date with openapi.json; ${FIX}.`);
    failed = true;
  } else {
    console.log("src/api/schema.d.ts matches openapi.json");
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
