/**
 * Key management CLI (works against the same database the service uses: DATABASE_URL or ./data PGlite; stop a
 * running `deno task start` first when on PGlite, its lock file allows one process).
 *   deno task keys create --name NAME --scopes sessions,tts [--tenant ID | --new-tenant NAME] [--max-sessions N]
 *   deno task keys list [--tenant ID]
 *   deno task keys revoke KEY_ID
 *   deno task keys tenants
 */
import { parseArgs } from "node:util";
import { createApiKey, createTenant, isScope, listApiKeys, revokeApiKey } from "../db/api_keys.ts";
import { openDatabase } from "../db/client.ts";
import { tenants } from "../db/schema.ts";
import { loadConfigOrExit } from "../lib/config.ts";
import { configureLogging } from "../lib/log.ts";
import type { Scope } from "../protocol/api.ts";

function fail(msg: string): never {
  console.error(`keys: ${msg}`);
  Deno.exit(2);
}

export async function runKeysCli(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: "string" },
      scopes: { type: "string" },
      tenant: { type: "string" },
      "new-tenant": { type: "string" },
      "max-sessions": { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const cmd = positionals[0];
  if (!cmd || !["create", "list", "revoke", "tenants"].includes(cmd)) {
    fail("usage: keys create|list|revoke|tenants (see cli/keys.ts header)");
  }
  const config = loadConfigOrExit();
  configureLogging({ level: "warn" });
  const database = await openDatabase({ url: config.DATABASE_URL, dataDir: `${config.DATA_DIR}/pglite` });
  try {
    if (cmd === "tenants") {
      for (const t of await database.db.select().from(tenants)) {
        console.log(`${t.id}\t${t.name}\t${t.createdAt}`);
      }
    } else if (cmd === "create") {
      const scopes = (values.scopes ?? "").split(",").map((s) => s.trim()).filter(Boolean);
      if (scopes.length === 0) {
        fail("--scopes is required (comma-separated: sessions,tts,transcripts:read,admin)");
      }
      const bad = scopes.filter((s) => !isScope(s));
      if (bad.length) fail(`unknown scope(s): ${bad.join(", ")}`);
      let tenantId = values.tenant;
      if (!tenantId && values["new-tenant"]) {
        tenantId = (await createTenant(database, values["new-tenant"])).id;
      }
      if (!tenantId) fail("--tenant ID or --new-tenant NAME is required");
      const max = values["max-sessions"] ? Number(values["max-sessions"]) : undefined;
      if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
        fail("--max-sessions must be a positive integer");
      }
      const k = await createApiKey(database, {
        tenantId,
        name: values.name ?? "cli",
        scopes: scopes as Scope[],
        maxSessions: max,
      });
      if (values.json) console.log(JSON.stringify(k));
      else console.log(`created key ${k.id} for tenant ${k.tenantId} (${k.scopes.join(",")}):\n${k.key}`);
    } else if (cmd === "list") {
      for (const k of await listApiKeys(database, values.tenant)) {
        console.log(
          [
            k.id,
            k.tenantId,
            k.prefix + "…",
            k.name,
            k.scopes.join(","),
            k.revokedAt ? `revoked ${k.revokedAt}` : "active",
          ]
            .join("\t"),
        );
      }
    } else if (cmd === "revoke") {
      const id = positionals[1];
      if (!id) fail("usage: keys revoke KEY_ID");
      if (!(await revokeApiKey(database, id))) fail(`no active key ${id}`);
      console.log(`revoked ${id}`);
    }
  } finally {
    await database.close();
  }
  return 0;
}

if (import.meta.main) Deno.exit(await runKeysCli(Deno.args));
