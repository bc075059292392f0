// Compiled with `tsc --noEmit` by the tests: an extension author's use of
// the API type-checks against src/index.d.ts and jco's generated declarations.
import { SyncSession, SyncError, findSessionByLeafUuid, instantiateEngine, type SyncReport } from "../../src/index.js";

export async function use(transcriptPath: string): Promise<number> {
  const s = new SyncSession({ backendUrl: "http://127.0.0.1:1", apiKey: "cfb_x", transcriptPath, redaction: { enabled: true } });
  const id: string = await s.init();
  const report: SyncReport = await s.syncAll();
  const lines: number = report.lines + report.files[0].linesSynced;
  await s.sendEvent("session_end", { reason: "exit" });
  const found: string | undefined = await findSessionByLeafUuid("/x", "uuid");
  const engine = await instantiateEngine({ folders: ["/x"] });
  const raw = engine.SyncSession.open({
    backendUrl: "", apiKey: "", externalId: id, transcriptPath, cwd: "/", redaction: { enabled: false, useDefaultPatterns: true, patterns: [] },
  });
  const rawLines: bigint = raw.syncAll().lines;
  try {
    await s.init();
  } catch (e) {
    if (e instanceof SyncError && e.code === "unauthorized") return -1;
  }
  return lines + Number(rawLines) + (found?.length ?? 0);
}
