// The Kotlin test of the mobile SDK: the generated bindings (package com.pitchey.realtime) on a
// real JVM against the real reference server started by scripts/test-mobile.sh.
//
// Environment (set by the script): PITCHEY_WS_URL, PITCHEY_HTTP_URL, PITCHEY_SERVER_BIN (to mint
// tokens with `token --user N`, same JWT_SECRET), PITCHEY_ADMIN_TOKEN, PITCHEY_WORK_DIR.
// Every check throws on failure; main exits non-zero on the first failure.

import com.pitchey.realtime.*
import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.system.exitProcess
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout

fun env(name: String): String = System.getenv(name) ?: throw IllegalStateException("$name is not set")

val wsUrl = env("PITCHEY_WS_URL")
val httpUrl = env("PITCHEY_HTTP_URL")
val serverBin = env("PITCHEY_SERVER_BIN")
val adminToken = env("PITCHEY_ADMIN_TOKEN")
val workDir = File(env("PITCHEY_WORK_DIR"))
val http: HttpClient = HttpClient.newHttpClient()

fun check(condition: Boolean, message: () -> String) {
    if (!condition) throw AssertionError(message())
}

/** A token signed with the server's secret, minted by the server binary. */
fun mint(user: Int, ttlSecs: Int = 3600): String {
    val p = ProcessBuilder(serverBin, "token", "--user", "$user", "--ttl-secs", "$ttlSecs")
        .redirectError(ProcessBuilder.Redirect.DISCARD).start()
    val out = p.inputStream.bufferedReader().readText().trim()
    check(p.waitFor() == 0 && out.isNotEmpty()) { "token --user $user failed" }
    return out
}

fun post(path: String, token: String, body: String, base: String = httpUrl): Pair<Int, String> {
    val req = HttpRequest.newBuilder(URI.create("$base$path"))
        .header("Authorization", "Bearer $token").header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)).build()
    val res = http.send(req, HttpResponse.BodyHandlers.ofString())
    return res.statusCode() to res.body()
}

fun get(path: String, token: String): String {
    val req = HttpRequest.newBuilder(URI.create("$httpUrl$path"))
        .header("Authorization", "Bearer $token").GET().build()
    return http.send(req, HttpResponse.BodyHandlers.ofString()).body()
}

fun notify(user: Int, title: String, base: String = httpUrl) {
    val (status, body) = post(
        "/api/ws/notify", mint(99),
        """{"userId": $user, "notification": {"type": "follow", "title": "$title", "message": "m", "data": {"followerId": 3}}}""",
        base,
    )
    check(status == 200) { "notify: $status $body" }
}

/** pitch_view frames the server received in total (GET /api/ws/stats). */
fun pitchViewsIn(): Int {
    val body = get("/api/ws/stats", adminToken)
    val m = Regex("\"pitch_view\"\\s*:\\s*(\\d+)").find(body.substringAfter("messagesInByType"))
    return m?.groupValues?.get(1)?.toInt() ?: 0
}

/** An EventListener implemented in Kotlin that keeps what it receives. */
class Collector : EventListener {
    val events = LinkedBlockingQueue<ClientEvent>()
    val count = AtomicInteger(0)
    override fun onEvent(event: ClientEvent) {
        count.incrementAndGet()
        events.add(event)
    }

    /** The first event matching [pick] within [ms], or a failure. */
    fun <T> await(what: String, ms: Long = 10_000, pick: (ClientEvent) -> T?): T {
        val deadline = System.nanoTime() + ms * 1_000_000
        while (true) {
            val left = deadline - System.nanoTime()
            check(left > 0) { "no $what within $ms ms" }
            val e = events.poll(left, TimeUnit.NANOSECONDS) ?: continue
            pick(e)?.let { return it }
        }
    }
}

/**
 * Handles of subscriptions a check listens on to its end. A dropped handle unsubscribes (when the
 * JVM collects it), so an unused result could stop the events a check waits for.
 */
val kept = java.util.Collections.synchronizedList(mutableListOf<SubscriptionHandle>())

fun client(user: Int, options: ClientOptions? = null, dir: File? = null, token: String = mint(user)): Client {
    var b = ClientBuilder(wsUrl).token(token)
    if (options != null) b = b.options(options)
    if (dir != null) b = b.persistenceDir(dir.path)
    return b.build()
}

suspend fun connected(c: Client, ms: Long = 10_000) {
    c.connect()
    withTimeout(ms) { c.connected() }
}

fun notificationTitled(title: String): (ClientEvent) -> Notification? = { e ->
    (e as? ClientEvent.NotificationReceived)?.notification?.takeIf { it.title == title }
}

// ---------------------------------------------------------------------------------------------

suspend fun connectNotifyAndCancel() {
    val c = client(1)
    val sub = Collector()
    val all = Collector()
    val handle = c.subscribeNotifications(sub)
    val allHandle = c.subscribeEvents(all)
    connected(c)
    check(c.state() == ConnectionState.Connected) { "state ${c.state()}" }
    notify(1, "hello from http")
    val n = sub.await("notification") { notificationTitled("hello from http")(it) }
    check(n.kind == "follow" && n.dataJson.contains("followerId")) { "notification $n" }

    handle.cancel()
    check(!handle.isActive()) { "cancelled handle still active" }
    val before = sub.count.get()
    notify(1, "after cancel")
    all.await("the second notification on the all-events listener") { notificationTitled("after cancel")(it) }
    Thread.sleep(300)
    check(sub.count.get() == before) { "a cancelled subscription got ${sub.count.get() - before} more events" }
    allHandle.cancel()
    c.disconnect()
    c.close()
}

suspend fun sendWithAck() {
    val c = client(2)
    connected(c)
    val id = c.reportPitchViewConfirmed(42uL)
    check(id.startsWith("c-")) { "id $id" }
    val id2 = c.sendConfirmed("pitch_view", """{"pitchId": 43}""")
    check(id2 != id) { "same id twice" }
    try {
        c.sendConfirmed("typing", """{"conversationId": 1, "isTyping": true}""")
        throw AssertionError("an ephemeral message was confirmed")
    } catch (e: PitcheyException.NotDurable) {
        check(e.kind == "typing") { "kind ${e.kind}" }
    }
    try {
        c.send("pitch_view", "{not json")
        throw AssertionError("bad JSON was accepted")
    } catch (e: PitcheyException.InvalidJson) {
    }
    c.setPresence(PresenceStatus.AWAY)
    c.setTyping(5uL, true)
    val m = c.metrics()
    check(m.queueDepth == 0uL || m.queueDepth <= 2uL) { "metrics $m" }
    c.disconnect()
    c.close()
}

class Provider(private val user: Int) : TokenProvider {
    val calls = AtomicInteger(0)
    override fun fetchToken(): String? {
        calls.incrementAndGet()
        // Tokens are refused up to the second of an expire-token fault: mint in a later one.
        Thread.sleep(1_100)
        return mint(user)
    }
}

suspend fun tokenProviderAfterExpiry() {
    val provider = Provider(3)
    val states = Collector()
    // The server mints no token that is born expired: one of a second, expired by the time it is used.
    val expired = mint(3, ttlSecs = 1)
    Thread.sleep(2_100)
    val c = ClientBuilder(wsUrl).token(expired).tokenProvider(provider).build()
    kept += c.subscribeState(states)
    connected(c, 15_000)
    check(provider.calls.get() >= 1) { "the provider was not asked for the expired token" }

    // Expire the session's token mid-session: close 4001, the provider is asked again.
    states.events.clear() // the states of the first connect are not the ones awaited below
    val (status, body) = post("/api/ws/faults/expire-token", adminToken, """{"userId": 3}""")
    check(status == 200) { "fault: $status $body" }
    states.await("AwaitingToken after the fault") { (it as? ClientEvent.StateChanged)?.state?.takeIf { s -> s == ConnectionState.AwaitingToken } }
    states.await("reconnected with the new token", 15_000) { (it as? ClientEvent.StateChanged)?.state?.takeIf { s -> s == ConnectionState.Connected } }
    check(provider.calls.get() >= 2) { "provider calls ${provider.calls.get()}" }
    c.reportPitchViewConfirmed(44uL)
    c.disconnect()
    c.close()
}

suspend fun draftConflictResolvedWithLocal() {
    val a = client(4)
    val b = client(4)
    connected(a)
    connected(b)
    val options = defaultDraftOptions().copy(
        draftType = "pitch",
        initialJson = """{"title": "Night Train", "budget": 1}""",
        baseVersion = 0uL,
        autoSaveIntervalMs = 3_600_000uL,
        strategy = ConflictStrategy.ASK,
    )
    val da = a.openDraft("pitch_kt", options)
    val db = b.openDraft("pitch_kt", options)
    val aEvents = Collector()
    val bEvents = Collector()
    kept += da.subscribe(aEvents)
    kept += db.subscribe(bEvents)
    db.update("""{"title": "B"}""")
    da.update("""{"title": "A"}""")
    da.save()
    aEvents.await("a's save") { (it as? ClientEvent.DraftSaved)?.takeIf { s -> (s.version ?: 0uL) >= 1uL } }
    try { db.save() } catch (_: PitcheyException) { }
    val conflict = bEvents.await("the conflict") { it as? ClientEvent.DraftConflict }
    check(conflict.localJson.contains("\"B\"") && conflict.remoteJson.contains("\"A\"")) { "conflict $conflict" }
    check(db.state().conflict != null) { "no conflict in state" }
    db.resolveWithLocal()
    bEvents.await("the resolved save") { (it as? ClientEvent.DraftSaved)?.takeIf { s -> (s.version ?: 0uL) >= 2uL } }
    val st = db.state()
    check(st.conflict == null && st.contentJson.contains("\"B\"")) { "state $st" }
    a.disconnect(); b.disconnect()
    da.close(); db.close(); a.close(); b.close()
}

suspend fun queueFull() {
    val c = client(5, defaultClientOptions().copy(outboxCapacity = 3u))
    repeat(3) { c.reportPitchView(50uL + it.toULong()) }
    try {
        c.reportPitchView(60uL)
        throw AssertionError("a fourth message fit in a queue of 3")
    } catch (e: PitcheyException.QueueFull) {
        check(e.capacity == 3uL) { "capacity ${e.capacity}" }
    }
    c.close()
}

suspend fun backgroundAndForeground() {
    val c = client(6)
    val events = Collector()
    kept += c.subscribeEvents(events)
    connected(c)
    c.onBackground()
    events.await("Closed after on_background") { (it as? ClientEvent.StateChanged)?.state?.takeIf { s -> s == ConnectionState.Closed } }
    val ids = (1..3).map { c.reportPitchView(60uL + it.toULong()) }.toSet()
    Thread.sleep(500)
    check(c.state() == ConnectionState.Closed) { "reconnected in the background: ${c.state()}" }
    val queuedMetrics = c.metrics()
    check(queuedMetrics.queueDepth == 3uL) { "queue $queuedMetrics" }
    c.onForeground()
    val acked = mutableSetOf<String>()
    while (acked != ids) {
        acked += events.await("acks after on_foreground") { (it as? ClientEvent.Acked)?.id }
    }
    check(c.state() == ConnectionState.Connected) { "state ${c.state()}" }
    c.disconnect()
    c.close()
}

suspend fun persistenceAcrossAKilledApp() {
    val dir = File(workDir, "persist")
    val a = client(8, dir = dir)
    connected(a)
    a.reportPitchViewConfirmed(70uL)
    a.disconnect()
    val queued = (1..3).map { a.reportPitchView(70uL + it.toULong()) }
    val file = File(dir, "pitchey-realtime-outbox.json")
    check(file.exists() && queued.all { file.readText().contains(it) }) { "not on disk: ${file.readText()}" }
    val viewsBefore = pitchViewsIn()
    a.close() // the app is killed: nothing of A's memory survives

    val b = client(8, dir = dir)
    val events = Collector()
    kept += b.subscribeEvents(events)
    val restored = b.metrics()
    check(restored.queueDepth == 3uL) { "restored $restored" }
    connected(b)
    val acked = mutableSetOf<String>()
    while (!acked.containsAll(queued)) {
        acked += events.await("acks of the restored messages") { (it as? ClientEvent.Acked)?.id }
    }
    Thread.sleep(300)
    val sent = pitchViewsIn() - viewsBefore
    check(sent == 3) { "the server received $sent pitch_view frames after the restart, expected 3" }
    val drained = b.metrics()
    check(drained.queueDepth == 0uL) { "queue $drained" }
    b.persistNow()
    check(queued.none { file.readText().contains(it) }) { "acked messages still on disk: ${file.readText()}" }
    b.disconnect()
    b.close()
}

/** Starts the server binary on [port] (same JWT_SECRET, inherited) and waits for its health check. */
fun startServer(port: Int, log: File): Process {
    val p = ProcessBuilder(serverBin, "--host", "127.0.0.1", "--port", "$port")
        .redirectOutput(log).redirectErrorStream(true).start()
    val deadline = System.nanoTime() + 30_000_000_000L
    while (System.nanoTime() < deadline) {
        check(p.isAlive) { "the restarted server exited: ${log.readText()}" }
        val up = try {
            val req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:$port/api/ws/health")).GET().build()
            http.send(req, HttpResponse.BodyHandlers.ofString()).statusCode() == 200
        } catch (_: java.io.IOException) {
            false
        }
        if (up) return p
        Thread.sleep(100)
    }
    p.destroy()
    throw AssertionError("the server on port $port did not answer its health check within 30 s")
}

suspend fun surviveServerRestart() {
    val port = java.net.ServerSocket(0).use { it.localPort }
    val log = File(workDir, "restart-server.log")
    var server = startServer(port, log)
    try {
        val c = ClientBuilder("ws://127.0.0.1:$port/ws").token(mint(9)).build()
        val states = Collector()
        val events = Collector()
        val notes = Collector()
        kept += c.subscribeState(states)
        kept += c.subscribeEvents(events)
        kept += c.subscribeNotifications(notes)
        connected(c)
        c.reportPitchViewConfirmed(90uL)

        server.destroy()
        check(server.waitFor(10, TimeUnit.SECONDS)) { "the server did not stop" }
        states.await("a state other than Connected after the server stopped") {
            (it as? ClientEvent.StateChanged)?.state?.takeIf { s -> s != ConnectionState.Connected }
        }
        // Sent while the server is down: queued, delivered after the restart.
        val queued = c.reportPitchView(91uL)
        check(c.metrics().queueDepth >= 1uL) { "nothing queued while offline" }

        server = startServer(port, log)
        states.await("Connected again after the restart", 30_000) {
            (it as? ClientEvent.StateChanged)?.state?.takeIf { s -> s == ConnectionState.Connected }
        }
        events.await("the ack of the message sent while offline", 15_000) {
            (it as? ClientEvent.Acked)?.id?.takeIf { id -> id == queued }
        }
        val after = c.metrics()
        check(after.queueDepth == 0uL) { "queue after the restart $after" }
        // The listener registered before the restart gets each notification once: reconnects
        // neither drop it nor add a second copy.
        notify(9, "after the restart", base = "http://127.0.0.1:$port")
        notes.await("the notification after the restart") { notificationTitled("after the restart")(it) }
        Thread.sleep(300)
        val copies = notes.events.count { notificationTitled("after the restart")(it) != null }
        check(copies == 0) { "the listener got ${copies + 1} copies of one notification" }
        c.disconnect()
        c.close()
    } finally {
        server.destroy()
    }
}

fun main() {
    val checks = listOf<Pair<String, suspend () -> Unit>>(
        "connect, a notification over HTTP through a listener, cancel the subscription" to ::connectNotifyAndCancel,
        "send with ack, typed errors" to ::sendWithAck,
        "token provider after expiry, reconnect with the new token" to ::tokenProviderAfterExpiry,
        "draft conflict (ask) resolved with local" to ::draftConflictResolvedWithLocal,
        "a full queue is QueueFull" to ::queueFull,
        "on_background closes, sends queued meanwhile go out after on_foreground" to ::backgroundAndForeground,
        "persistence: a killed app loses nothing and sends nothing twice" to ::persistenceAcrossAKilledApp,
        "the server restarts: reconnect, a message sent while it was down is delivered" to ::surviveServerRestart,
    )
    var failed = 0
    for ((name, body) in checks) {
        val t0 = System.nanoTime()
        try {
            runBlocking { withTimeout(60_000) { body() } }
            println("ok   $name (${(System.nanoTime() - t0) / 1_000_000} ms)")
        } catch (e: Throwable) {
            failed++
            println("FAIL $name: $e")
            e.printStackTrace()
        }
    }
    if (failed > 0) {
        println("$failed of ${checks.size} Kotlin checks failed")
        exitProcess(1)
    }
    println("all ${checks.size} Kotlin checks passed")
    exitProcess(0)
}
