// The offline queue: captures taken without a network, kept in IndexedDB encrypted with
// AES-GCM under a non-extractable WebCrypto key that never leaves this browser.

const DB_NAME = "biomatch-offline";
const STORES = ["captures", "discards", "keys"];

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      for (const name of STORES) {
        if (!request.result.objectStoreNames.contains(name)) {
          request.result.createObjectStore(name, { keyPath: "id" });
        }
      }
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run(store, mode, action) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const transaction = db.transaction(store, mode);
      const request = action(transaction.objectStore(store));
      transaction.oncomplete = () => resolve(request ? request.result : undefined);
      transaction.onerror = () => reject(transaction.error);
    });
  } finally {
    db.close();
  }
}

async function queueKey() {
  const found = await run("keys", "readonly", (s) => s.get("queue"));
  if (found) return found.key;
  const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, [
    "encrypt",
    "decrypt",
  ]);
  await run("keys", "readwrite", (s) => s.put({ id: "queue", key }));
  return key;
}

// Queue one capture: `summary` (gallery, mode, purpose, training) stays readable for the
// list; the search fields and the image are encrypted together.
export async function enqueue(summary, fields, image) {
  const key = await queueKey();
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const header = new TextEncoder().encode(JSON.stringify(fields));
  const imageBytes = new Uint8Array(await image.arrayBuffer());
  const plain = new Uint8Array(4 + header.length + imageBytes.length);
  new DataView(plain.buffer).setUint32(0, header.length);
  plain.set(header, 4);
  plain.set(imageBytes, 4 + header.length);
  const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, plain);
  const item = { id: crypto.randomUUID(), queuedAt: new Date().toISOString(), summary, iv, sealed };
  await run("captures", "readwrite", (s) => s.put(item));
  return item.id;
}

export async function queued() {
  const items = await run("captures", "readonly", (s) => s.getAll());
  return items.sort((a, b) => a.queuedAt.localeCompare(b.queuedAt));
}

export async function open(item) {
  const key = await queueKey();
  const plain = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: item.iv }, key, item.sealed));
  const length = new DataView(plain.buffer).getUint32(0);
  const fields = JSON.parse(new TextDecoder().decode(plain.slice(4, 4 + length)));
  return { fields, image: new Blob([plain.slice(4 + length)], { type: "image/jpeg" }) };
}

export async function remove(id) {
  await run("captures", "readwrite", (s) => s.delete(id));
}

// Discard unsent; the discard is kept (without the image) until the service has audited it.
export async function discard(item, reason) {
  await remove(item.id);
  const record = {
    id: item.id,
    queued_at: item.queuedAt,
    discarded_at: new Date().toISOString(),
    gallery: item.summary.gallery,
    mode: item.summary.mode,
    purpose: item.summary.purpose,
    reason,
  };
  await run("discards", "readwrite", (s) => s.put(record));
}

export async function pendingDiscards() {
  return run("discards", "readonly", (s) => s.getAll());
}

export async function clearDiscards(ids) {
  await run("discards", "readwrite", (s) => {
    for (const id of ids) s.delete(id);
  });
}
