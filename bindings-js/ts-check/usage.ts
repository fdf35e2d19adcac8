// Type-checks the package as an app sees it (`tsc --noEmit`, run by scripts/test-js.sh with
// node_modules/@pitchey/realtime linked to ../dist): every method, option, event and error.
import {
  Client,
  type ClientOptions,
  type ConnectionStatus,
  type Draft,
  type DraftEvent,
  type DraftState,
  type ErrorInfo,
  type Metrics,
  type Notification,
  type RealtimeError,
  type RealtimeErrorName,
  type ServerFrame,
  type StateInfo,
} from "@pitchey/realtime";

export async function usage(): Promise<void> {
  const options: ClientOptions = {
    url: "wss://api.pitchey.com/ws",
    token: "jwt",
    tokenProvider: async () => "fresh",
    backoff: { initialMs: 500, maxMs: 30000, multiplier: 2 },
    queueSize: 100,
    heartbeatMs: 30000,
    persistKey: "pitchey-outbox",
  };
  const client = new Client(options);
  const status: ConnectionStatus = client.status;
  if (status === "awaiting_token") client.setToken("jwt2");

  await client.connect();
  const id: string = await client.sendPitchView(42);
  const id2: string = await client.send("pitch_view", { pitchId: 1 });
  await client.setPresence("away");
  await client.setTyping(3, true);
  client.wake();

  const offs: Array<() => void> = [
    client.on("notification", (n: Notification) => console.log(n.title, n.createdAt ?? "", n.read)),
    client.on("dashboard_update", (m) => console.log(m.totalViews + m.followers, m["custom"])),
    client.on("pitch_stats_update", (s) => console.log(s.viewCount, s.recentViewers[0]?.username)),
    client.on("presence_update", (p) => console.log(p.userId, p.status === "online")),
    client.on("user_typing", (t) => console.log(t.conversationId, t.isTyping)),
    client.on("upload_progress", (u) => console.log(u.progress, u.status === "completed")),
    client.on("draft_sync", (d) => console.log(d.draftId, d.version)),
    client.on("state", (s: StateInfo) => console.log(s.status, s.attempt, s.delayMs)),
    client.on("error", (e: ErrorInfo) => console.log(e.name, e.serverCode)),
    client.on("message", (f: ServerFrame) => console.log(f.type, f.seq)),
    client.on("acked", (acked: string) => console.log(acked)),
    client.on("send_failed", (f) => console.log(f.id, f.error.name)),
    client.on("continuity_lost", () => console.log("refetch")),
    client.on("lagged", (l) => console.log(l.missed)),
    client.on("some_future_type", (x: unknown) => console.log(x)),
    client.subscribe("pitch:42", (s) => console.log(s.uniqueViewers)),
    client.subscribe("presence:7", (p) => console.log(p.lastSeen)),
    client.subscribe("conversation:3", (t) => console.log(t.username)),
  ];
  offs.forEach((off) => off());

  const m: Metrics = await client.metrics();
  console.log(m.queueDepth, m.rttMs, m.reconnects, id, id2);

  const draft: Draft = client.openDraft("pitch_42", {
    draftType: "pitch",
    initial: { title: "" },
    baseVersion: 3,
    autoSaveIntervalMs: 5000,
    conflictResolution: "ask",
    validate: (content) => Boolean(content?.title),
  });
  const offDraft = draft.on((e: DraftEvent) => {
    if (e.type === "conflict") console.log(e.local, e.remote, e.remoteVersion);
    if (e.type === "save_failed") console.log(e.name, e.message);
  });
  await draft.update({ title: "Hello" });
  await draft.save();
  const s: DraftState = await draft.state();
  if (s.conflict) {
    await draft.resolveWithLocal();
    await draft.resolveWithRemote();
  }
  console.log(draft.id, s.isDirty, s.isSaving, s.lastSaved);
  offDraft();
  draft.close();

  try {
    await client.sendPitchView(1);
  } catch (e) {
    const err = e as RealtimeError;
    const name: RealtimeErrorName = err.name;
    if (name === "QueueFull" || err.code === "TooLarge") console.log(err.id, err.serverCode);
  }
  await client.disconnect();
  await client.close(1000);
  client.free();
}
