// Fails when src/api/schema.d.ts is not what openapi-typescript makes of openapi.json today,
// i.e. when someone changed the spec (or the types) without running `npm run gen:api`.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "prefaudit-api-"));
const fresh = join(dir, "schema.d.ts");
try {
  execFileSync("npx", ["openapi-typescript", "openapi.json", "--default-non-nullable", "false", "-o", fresh], { stdio: "pipe" });
  const committed = readFileSync("src/api/schema.d.ts", "utf8");
  if (readFileSync(fresh, "utf8") !== committed) {
    execFileSync("diff", ["-u", "src/api/schema.d.ts", fresh], { stdio: "inherit" });
  }
  console.log("src/api/schema.d.ts matches openapi.json");
} catch (error) {
  console.error(
    "src/api/schema.d.ts is out of date with openapi.json: run `npm run gen:api` " +
      "(after `prefaudit openapi --out frontend/openapi.json`) and commit both.",
  );
  process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
