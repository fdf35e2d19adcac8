// Where the page connects and as whom, from the query string (all optional):
//   ?ws=ws://127.0.0.1:8001/ws   the endpoint (default: VITE_WS_URL, else port 8001 of this host)
//   &http=http://127.0.0.1:8001  the HTTP API (default: derived from ws)
//   &token=JWT                   connect with this token; without it the page asks the demo
//                                server's POST /api/dev/token for one (pitchey-mock-server --demo)
//   &user=1&username=ada         whom to ask a dev token for (default: demo user 1, ada)
//   &pitch=42&conversation=42&draft=pitch_42   what the widgets show
//   &autosave=5000&conflict=ask  the draft editor's useDraftSync options

const q = new URLSearchParams(window.location.search);

function num(name: string, fallback: number): number {
  const v = Number(q.get(name));
  return q.has(name) && Number.isFinite(v) ? v : fallback;
}

const defaultWs =
  (import.meta.env.VITE_WS_URL as string | undefined) ?? `ws://${window.location.hostname || "127.0.0.1"}:8001/ws`;

export const wsUrl = q.get("ws") ?? defaultWs;
export const httpUrl = q.get("http") ?? wsUrl.replace(/^ws/, "http").replace(/\/ws\/?$/, "");
export const tokenParam = q.get("token");
export const userId = num("user", 1);
export const username = q.get("username") ?? undefined;
export const pitchId = num("pitch", 42);
export const conversationId = num("conversation", 42);
export const draftId = q.get("draft") ?? `pitch_${pitchId}`;
export const autoSaveInterval = num("autosave", 5000);
export const conflictResolution = (q.get("conflict") ?? "ask") as "ask" | "local" | "remote" | "merge";
/** The users whose presence dots are shown (the demo's four). */
export const people: { id: number; name: string }[] = [
  { id: 1, name: "ada" },
  { id: 2, name: "grace" },
  { id: 3, name: "linus" },
  { id: 4, name: "margaret" },
];

/** A token for the page: `?token=`, else one from the demo server's dev endpoint. */
export async function fetchToken(): Promise<string> {
  if (tokenParam) return tokenParam;
  const res = await fetch(`${httpUrl}/api/dev/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ userId, username }),
  });
  if (!res.ok) {
    throw new Error(
      `POST ${httpUrl}/api/dev/token: HTTP ${res.status} (is the server running with --demo? or pass ?token=)`,
    );
  }
  const body = (await res.json()) as { token: string };
  return body.token;
}
