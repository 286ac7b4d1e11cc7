/**
 * Every setting of a node, read from env vars and validated at start. The README's env var table
 * lists the same variables; test/unit/lib/config.test.ts checks the two stay in step.
 *
 *   NODE_ID                       node id on the bus                      host name + pid
 *   NAMESPACE                     bus namespace (isolates clusters)       social
 *   TRANSPORTER                   nats://host:port[,nats://...]           unset: one local broker
 *   MONGO_URL                     mongodb://... store                      unset: embedded store
 *   DATA_DIR                      embedded store folder                   ./data
 *   EMBEDDED_SYNCHRONOUS          embedded store's disk flush: FULL|NORMAL FULL
 *   REDIS_URL                     redis://... cache, limits, presence     unset: in memory
 *   REDIS_CLUSTER_NODES           host:port[,...] Redis Cluster seeds     unset (not with REDIS_URL)
 *   HOST / PORT                   gateway HTTP listen address             0.0.0.0 / 3000
 *   METRICS_PORT                  Prometheus /metrics port (0: any free)  3030
 *   METRICS_HOST                  address /metrics listens on             127.0.0.1 (this host only)
 *   METRICS_ENABLED               serve Prometheus metrics                true
 *   LOG_LEVEL                     fatal|error|warn|info|debug|trace       info
 *   TRACING_EXPORTER              none|console|event|zipkin               none (tracing off)
 *   TRACING_SAMPLE_RATE           share of requests traced, 0 to 1        1
 *   TRACING_ZIPKIN_URL            Zipkin base URL (exporter zipkin)       http://127.0.0.1:9411
 *   REQUEST_TIMEOUT_MS            timeout of every bus call               10000
 *   RETRY_MAX                     retries of retryable errors             2
 *   CIRCUIT_BREAKER_THRESHOLD     failure ratio that opens a circuit      0.5
 *   CIRCUIT_BREAKER_MIN_REQUESTS  calls in a window before it can open    10
 *   CIRCUIT_BREAKER_WINDOW_S      window the ratio is measured over       30
 *   CIRCUIT_BREAKER_HALF_OPEN_MS  open time before one probe call         5000
 *   UV_THREADPOOL_SIZE            libuv's thread pool (argon2 runs there)  4
 *   HASH_CONCURRENCY              hashes run at once per node             libuv pool - 1, at most the cores
 *   HASH_MAX_WAIT_MS              longest foreseen wait for a hash (503)  200
 *   HASH_QUEUE_SIZE               hashes waiting at most (503 beyond)     100
 *   ARGON2_MEMORY_KIB / ARGON2_TIME_COST / ARGON2_PARALLELISM   19456 / 2 / 1 (OWASP minimum)
 *   JWT_ISSUER / JWT_AUDIENCE     access token iss / aud                  social-platform
 *   ACCESS_TOKEN_TTL_S            access token lifetime                   900
 *   REFRESH_TOKEN_TTL_S           refresh token lifetime                  2592000 (30 days)
 *   REFRESH_REUSE_GRACE_MS        a just-rotated refresh token repeats    5000 (0: reuse always revokes)
 *   SIGNING_KEY_ROTATION_S        age at which a new signing key is made  604800 (7 days)
 *   RATE_LIMIT_REGISTER_IP        registrations per client IP             20/3600
 *   RATE_LIMIT_LOGIN_IP           login attempts per client IP            60/60
 *   RATE_LIMIT_LOGIN_ACCOUNT      failed logins per account               10/900
 *   RATE_LIMIT_SEND_USER          messages per user, REST and sockets     120/60
 *   RATE_LIMIT_CHAT_CREATE_USER   chats created per user                  60/3600
 *   RATE_LIMIT_MEMBER_ADD_USER    members added to groups per user        200/3600
 *   TRUSTED_PROXIES               proxies whose X-Forwarded-For counts    none
 *   CORS_ORIGINS                  origins allowed by CORS                 none
 *   BODY_LIMIT_BYTES              largest JSON body                       65536
 *   PROFILE_CACHE_TTL_S           profile read cache lifetime             300
 *   PROFILE_LOCAL_CACHE_TTL_S     profile copy kept in memory (0 off)     5
 *   CHAT_MAX_GROUP_MEMBERS        members of a group chat at most         100
 *   CHAT_MAX_MESSAGE_LENGTH       characters of a message at most         4000
 *   CHAT_MEMBER_CACHE_TTL_S       chat members reused for sends (0 off)   5
 *   CHAT_SEND_CONCURRENCY         sends a chat node stores at once         1000
 *   WS_ORIGINS                    origins allowed to open a WebSocket     CORS_ORIGINS and same host
 *   WS_MAX_PAYLOAD_BYTES          largest WebSocket frame (1009 beyond)   65536
 *   WS_MAX_BUFFERED_BYTES         unsent bytes per socket (1013 beyond)   1048576
 *   WS_HEARTBEAT_MS               ping interval; two missed pongs close   30000
 *   WS_RATE_LIMIT                 frames per connection                   60/10 (x2 closes 4008)
 *   WS_TYPING_RATE_LIMIT          typing frames per connection            10/10
 *   WS_MAX_FRAMES_IN_PROGRESS     frames a gateway works on at once       1000 (sockets paused beyond)
 *   WS_MAX_CONNECTIONS_PER_USER   sockets per user in the cluster         20 (4029 beyond)
 *   WS_RESUME_MAX_MESSAGES        messages a resume replays per chat      200 (the rest: from the history)
 *   FILE_STORE                    where uploaded files live: disk|s3      s3 when S3_BUCKET is set, else disk
 *   FILES_DIR                     folder of the disk file store           DATA_DIR/files
 *   S3_ENDPOINT                   S3-compatible endpoint URL              unset: AWS
 *   S3_BUCKET / S3_REGION         bucket of the s3 file store / region    none / us-east-1
 *   S3_FORCE_PATH_STYLE           path-style bucket URLs                  true when S3_ENDPOINT is set
 *   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY   the s3 store's key pair   unset: the AWS SDK's chain
 *   UPLOAD_MAX_BYTES              largest upload                          26214400 (25 MiB)
 *   UPLOAD_QUOTA_BYTES            stored upload bytes per user at most    1073741824 (1 GiB)
 *   UPLOAD_ALLOWED_TYPES          content types an upload may have        images, PDF, text, audio, video, zip
 *   UPLOAD_ORPHAN_TTL_S           age at which unattached uploads go      86400
 *   SMTP_URL                      smtp:// or smtps:// mail server         unset: .eml files in DATA_DIR/outbox
 *   MAIL_FROM                     From: of every mail                     Social <no-reply@localhost>
 *   PUBLIC_URL                    base URL of the links in mails          http://localhost:PORT
 *   REQUIRE_EMAIL_VERIFICATION    unverified accounts cannot send or open chats   false
 *   RATE_LIMIT_MAIL_ADDRESS       mails asked for per address             5/3600
 *   RATE_LIMIT_MAIL_IP            mails asked for per client IP           30/3600
 *   RATE_LIMIT_TOKEN_IP           mailed-token and 2FA tries per client IP  60/600
 *   USERNAME_HOLD_DAYS            days a deleted account's username stays taken  30
 *   RATE_LIMIT_EXPORT_USER        data exports per user                   1/3600
 *   PUSH_PREVIEW                  pushes carry a short preview of the text  true
 *   VAPID_SUBJECT                 contact in the VAPID JWT (mailto: or https:)  mailto: MAIL_FROM's address
 *   PUSH_ALLOW_INSECURE           allow http:// and loopback push endpoints (tests only)  false
 */
import os from "node:os";
import path from "node:path";
import { ConfigError, type Env, EnvReader } from "./env.ts";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;
export const SYNCHRONOUS_MODES = ["FULL", "NORMAL"] as const;
export const TRACING_EXPORTERS = ["none", "console", "event", "zipkin"] as const;

export const FILE_STORES = ["disk", "s3"] as const;

/** What an upload may be by default: found from its bytes, never from what the client says. */
export const DEFAULT_UPLOAD_TYPES = [
  "image/jpeg",
  "image/png",
  "image/gif",
  "image/webp",
  "image/avif",
  "application/pdf",
  "text/plain",
  "audio/mpeg",
  "audio/ogg",
  "audio/wav",
  "audio/flac",
  "audio/mp4",
  "audio/aac",
  "audio/webm",
  "video/mp4",
  "video/webm",
  "video/quicktime",
  "video/ogg",
  "application/zip",
];

export interface Rate {
  points: number;
  duration: number;
}

export interface PlatformConfig {
  nodeId: string;
  namespace: string;
  transporter: string | undefined;
  mongoUrl: string | undefined;
  dataDir: string;
  embeddedSynchronous: (typeof SYNCHRONOUS_MODES)[number];
  redisUrl: string | undefined;
  /** REDIS_CLUSTER_NODES: seed nodes of a Redis Cluster (host:port or redis:// URLs), or none. */
  redisClusterNodes: string[];
  host: string;
  port: number;
  metricsEnabled: boolean;
  metricsPort: number;
  metricsHost: string;
  logLevel: (typeof LOG_LEVELS)[number];
  tracing: { exporter: (typeof TRACING_EXPORTERS)[number]; sampleRate: number; zipkinUrl: string };
  requestTimeoutMs: number;
  retryMax: number;
  circuitBreaker: { threshold: number; minRequests: number; windowS: number; halfOpenMs: number };
  hashing: {
    concurrency: number;
    maxWaitMs: number;
    queueSize: number;
    memoryKiB: number;
    timeCost: number;
    parallelism: number;
  };
  jwt: {
    issuer: string;
    audience: string;
    accessTtlS: number;
    refreshTtlS: number;
    refreshReuseGraceMs: number;
    keyRotationS: number;
  };
  rateLimits: {
    registerIp: Rate;
    loginIp: Rate;
    loginAccount: Rate;
    sendUser: Rate;
    chatCreateUser: Rate;
    memberAddUser: Rate;
  };
  trustedProxies: string[];
  corsOrigins: string[];
  bodyLimitBytes: number;
  profileCacheTtlS: number;
  profileLocalCacheTtlS: number;
  chat: {
    maxGroupMembers: number;
    maxMessageLength: number;
    memberCacheTtlS: number;
    sendConcurrency: number;
  };
  ws: {
    origins: string[];
    maxPayloadBytes: number;
    maxBufferedBytes: number;
    heartbeatMs: number;
    rate: Rate;
    typingRate: Rate;
    maxFramesInProgress: number;
    maxConnectionsPerUser: number;
    resumeMaxMessages: number;
    /**
     * TRUSTED_PROXIES, REDIS_URL (or REDIS_CLUSTER_NODES) and NAMESPACE again, for the WebSocket
     * endpoint, which is built from this section: whose X-Forwarded-Proto the Origin check
     * believes, and where the connections per user are counted.
     */
    trustedProxies: string[];
    redisUrl: string | undefined;
    redisClusterNodes: string[];
    namespace: string;
  };
  files: {
    store: (typeof FILE_STORES)[number];
    dir: string;
    s3: {
      endpoint: string | undefined;
      bucket: string;
      region: string;
      forcePathStyle: boolean;
      /** AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY when both are set; else the SDK's own chain. */
      credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
    };
    maxBytes: number;
    quotaBytes: number;
    allowedTypes: string[];
    orphanTtlS: number;
  };
  mail: {
    smtpUrl: string | undefined;
    from: string;
    publicUrl: string;
  };
  account: {
    requireEmailVerification: boolean;
    usernameHoldDays: number;
    mailAddressRate: Rate;
    mailIpRate: Rate;
    tokenIpRate: Rate;
    exportRate: Rate;
  };
  push: {
    preview: boolean;
    subject: string;
    allowInsecure: boolean;
  };
}

export function loadConfig(env: Env = process.env): PlatformConfig {
  const e = new EnvReader(env);
  return readConfig(e);
}

/**
 * Hashes a node runs at once by default: libuv's pool less one thread left for the file system and
 * DNS work that shares it (when the pool has more than two), and no more than the cores, since
 * each argon2id hash (parallelism 1) keeps one core busy.
 */
export function hashSlotsDefault(poolThreads: number): number {
  const forHashing = poolThreads > 2 ? poolThreads - 1 : poolThreads;
  return Math.max(1, Math.min(forHashing, os.availableParallelism()));
}

/** The names of every variable loadConfig reads. */
export function configVariables(): string[] {
  const e = new EnvReader({});
  readConfig(e);
  return [...e.read].sort();
}

/**
 * The S3 key pair, read here like every setting (so a node started with an env of its own, as in
 * the tests, uses its own); a node given neither falls back to the AWS SDK's chain (profiles,
 * instance roles, web identity).
 */
function s3Credentials(e: EnvReader): PlatformConfig["files"]["s3"]["credentials"] {
  const accessKeyId = e.optionalString("AWS_ACCESS_KEY_ID");
  const secretAccessKey = e.optionalString("AWS_SECRET_ACCESS_KEY");
  if (accessKeyId === undefined && secretAccessKey === undefined) return undefined;
  if (!accessKeyId || !secretAccessKey) {
    throw new ConfigError("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together");
  }
  return { accessKeyId, secretAccessKey };
}

/** The address of a From: such as `Name <addr@host>` or `addr@host`. */
export function mailAddressOf(from: string): string {
  return /<([^<>]+)>\s*$/.exec(from)?.[1]?.trim() ?? from.trim();
}

function readConfig(e: EnvReader): PlatformConfig {
  const dataDir = path.resolve(e.string("DATA_DIR", "./data"));
  const port = e.int("PORT", 3000, 0, 65535);
  const mailFrom = e.string("MAIL_FROM", "Social <no-reply@localhost>");
  const publicUrl = (e.url("PUBLIC_URL", ["http:", "https:"]) ?? `http://localhost:${port}`).replace(
    /\/+$/,
    "",
  );
  const vapidSubject = e.string("VAPID_SUBJECT", `mailto:${mailAddressOf(mailFrom)}`);
  if (!/^(mailto:\S+@\S+|https:\/\/\S+)$/.test(vapidSubject)) {
    throw new ConfigError("VAPID_SUBJECT", "VAPID_SUBJECT must be a mailto: address or an https:// URL");
  }
  const s3Bucket = e.string("S3_BUCKET", "");
  const s3Endpoint = e.url("S3_ENDPOINT", ["http:", "https:"]);
  const allowedTypes = e.list("UPLOAD_ALLOWED_TYPES");
  const redisUrl = e.url("REDIS_URL", ["redis:", "rediss:"]);
  const redisClusterNodes = e.hostPortList("REDIS_CLUSTER_NODES", ["redis:", "rediss:"]);
  if (redisUrl && redisClusterNodes.length > 0) {
    throw new ConfigError(
      "REDIS_CLUSTER_NODES",
      "REDIS_CLUSTER_NODES and REDIS_URL exclude each other: set one (a Redis Cluster, or one Redis)",
    );
  }
  return {
    nodeId: e.string("NODE_ID", `${os.hostname()}-${process.pid}`),
    namespace: e.string("NAMESPACE", "social"),
    transporter: e.urlList("TRANSPORTER", ["nats:"]),
    mongoUrl: e.multiHostUrl("MONGO_URL", ["mongodb:", "mongodb+srv:"]),
    dataDir,
    embeddedSynchronous: e.oneOf("EMBEDDED_SYNCHRONOUS", "FULL", SYNCHRONOUS_MODES),
    redisUrl,
    redisClusterNodes,
    host: e.string("HOST", "0.0.0.0"),
    port,
    metricsEnabled: e.bool("METRICS_ENABLED", true),
    metricsPort: e.int("METRICS_PORT", 3030, 0, 65535),
    metricsHost: e.string("METRICS_HOST", "127.0.0.1"),
    logLevel: e.oneOf("LOG_LEVEL", "info", LOG_LEVELS),
    tracing: {
      exporter: e.oneOf("TRACING_EXPORTER", "none", TRACING_EXPORTERS),
      sampleRate: e.number("TRACING_SAMPLE_RATE", 1, 0, 1),
      zipkinUrl: e.url("TRACING_ZIPKIN_URL", ["http:", "https:"]) ?? "http://127.0.0.1:9411",
    },
    requestTimeoutMs: e.int("REQUEST_TIMEOUT_MS", 10_000, 100, 600_000),
    retryMax: e.int("RETRY_MAX", 2, 0, 10),
    circuitBreaker: {
      threshold: e.number("CIRCUIT_BREAKER_THRESHOLD", 0.5, 0.01, 1),
      minRequests: e.int("CIRCUIT_BREAKER_MIN_REQUESTS", 10, 1),
      windowS: e.int("CIRCUIT_BREAKER_WINDOW_S", 30, 1),
      halfOpenMs: e.int("CIRCUIT_BREAKER_HALF_OPEN_MS", 5_000, 100),
    },
    hashing: {
      concurrency: e.int(
        "HASH_CONCURRENCY",
        hashSlotsDefault(e.int("UV_THREADPOOL_SIZE", 4, 1, 1024)),
        1,
        64,
      ),
      maxWaitMs: e.int("HASH_MAX_WAIT_MS", 200, 0, 60_000),
      queueSize: e.int("HASH_QUEUE_SIZE", 100, 0, 100_000),
      memoryKiB: e.int("ARGON2_MEMORY_KIB", 19_456, 19_456, 4_194_304),
      timeCost: e.int("ARGON2_TIME_COST", 2, 2, 100),
      parallelism: e.int("ARGON2_PARALLELISM", 1, 1, 16),
    },
    jwt: {
      issuer: e.string("JWT_ISSUER", "social-platform"),
      audience: e.string("JWT_AUDIENCE", "social-platform"),
      accessTtlS: e.int("ACCESS_TOKEN_TTL_S", 900, 1, 86_400),
      refreshTtlS: e.int("REFRESH_TOKEN_TTL_S", 30 * 86_400, 60, 365 * 86_400),
      refreshReuseGraceMs: e.int("REFRESH_REUSE_GRACE_MS", 5_000, 0, 60_000),
      keyRotationS: e.int("SIGNING_KEY_ROTATION_S", 7 * 86_400, 60),
    },
    rateLimits: {
      registerIp: e.rate("RATE_LIMIT_REGISTER_IP", "20/3600"),
      loginIp: e.rate("RATE_LIMIT_LOGIN_IP", "60/60"),
      loginAccount: e.rate("RATE_LIMIT_LOGIN_ACCOUNT", "10/900"),
      sendUser: e.rate("RATE_LIMIT_SEND_USER", "120/60"),
      chatCreateUser: e.rate("RATE_LIMIT_CHAT_CREATE_USER", "60/3600"),
      memberAddUser: e.rate("RATE_LIMIT_MEMBER_ADD_USER", "200/3600"),
    },
    trustedProxies: e.list("TRUSTED_PROXIES"),
    corsOrigins: e.list("CORS_ORIGINS"),
    bodyLimitBytes: e.int("BODY_LIMIT_BYTES", 65_536, 1_024, 10_485_760),
    profileCacheTtlS: e.int("PROFILE_CACHE_TTL_S", 300, 1),
    profileLocalCacheTtlS: e.int("PROFILE_LOCAL_CACHE_TTL_S", 5, 0, 3_600),
    chat: {
      maxGroupMembers: e.int("CHAT_MAX_GROUP_MEMBERS", 100, 2, 100_000),
      maxMessageLength: e.int("CHAT_MAX_MESSAGE_LENGTH", 4_000, 1, 100_000),
      memberCacheTtlS: e.int("CHAT_MEMBER_CACHE_TTL_S", 5, 0, 3_600),
      sendConcurrency: e.int("CHAT_SEND_CONCURRENCY", 1_000, 1, 100_000),
    },
    ws: {
      origins: e.list("WS_ORIGINS"),
      maxPayloadBytes: e.int("WS_MAX_PAYLOAD_BYTES", 65_536, 1_024, 16_777_216),
      maxBufferedBytes: e.int("WS_MAX_BUFFERED_BYTES", 1_048_576, 65_536, 1_073_741_824),
      heartbeatMs: e.int("WS_HEARTBEAT_MS", 30_000, 100, 600_000),
      rate: e.rate("WS_RATE_LIMIT", "60/10"),
      typingRate: e.rate("WS_TYPING_RATE_LIMIT", "10/10"),
      maxFramesInProgress: e.int("WS_MAX_FRAMES_IN_PROGRESS", 1_000, 1, 1_000_000),
      maxConnectionsPerUser: e.int("WS_MAX_CONNECTIONS_PER_USER", 20, 1, 100_000),
      resumeMaxMessages: e.int("WS_RESUME_MAX_MESSAGES", 200, 1, 10_000),
      trustedProxies: e.list("TRUSTED_PROXIES"),
      redisUrl,
      redisClusterNodes,
      namespace: e.string("NAMESPACE", "social"),
    },
    files: {
      store: e.oneOf("FILE_STORE", s3Bucket ? "s3" : "disk", FILE_STORES),
      dir: path.resolve(dataDir, e.string("FILES_DIR", path.join(dataDir, "files"))),
      s3: {
        endpoint: s3Endpoint,
        bucket: s3Bucket,
        region: e.string("S3_REGION", "us-east-1"),
        forcePathStyle: e.bool("S3_FORCE_PATH_STYLE", s3Endpoint !== undefined),
        credentials: s3Credentials(e),
      },
      maxBytes: e.int("UPLOAD_MAX_BYTES", 26_214_400, 1, 5 * 1024 ** 3),
      quotaBytes: e.int("UPLOAD_QUOTA_BYTES", 1024 ** 3, 1),
      allowedTypes: allowedTypes.length ? allowedTypes.map((t) => t.toLowerCase()) : DEFAULT_UPLOAD_TYPES,
      orphanTtlS: e.int("UPLOAD_ORPHAN_TTL_S", 86_400, 1, 365 * 86_400),
    },
    mail: {
      smtpUrl: e.url("SMTP_URL", ["smtp:", "smtps:"]),
      from: mailFrom,
      publicUrl,
    },
    account: {
      requireEmailVerification: e.bool("REQUIRE_EMAIL_VERIFICATION", false),
      usernameHoldDays: e.int("USERNAME_HOLD_DAYS", 30, 0, 3_650),
      mailAddressRate: e.rate("RATE_LIMIT_MAIL_ADDRESS", "5/3600"),
      mailIpRate: e.rate("RATE_LIMIT_MAIL_IP", "30/3600"),
      tokenIpRate: e.rate("RATE_LIMIT_TOKEN_IP", "60/600"),
      exportRate: e.rate("RATE_LIMIT_EXPORT_USER", "1/3600"),
    },
    push: {
      preview: e.bool("PUSH_PREVIEW", true),
      subject: vapidSubject,
      allowInsecure: e.bool("PUSH_ALLOW_INSECURE", false),
    },
  };
}
