// Keeps the app's own files so that it opens without a network (the offline queue needs the
// app, not the service). Network first, the kept copy when offline; the API is never kept.

const CACHE = "biomatch-app-v1";
const SHELL = [
  "/app/",
  "/app/app.js",
  "/app/camera.js",
  "/app/queue.js",
  "/app/app.css",
  "/app/manifest.webmanifest",
  "/app/icon.svg",
  "/app/icon-192.png",
  "/shared/api.js",
  "/shared/words.js",
  "/shared/boxes.js",
  "/shared/base.css",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys().then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n)))),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!url.pathname.startsWith("/app/") && !url.pathname.startsWith("/shared/")) return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        const copy = response.clone();
        if (response.ok) caches.open(CACHE).then((cache) => cache.put(event.request, copy));
        return response;
      })
      .catch(() => caches.match(event.request, { ignoreSearch: true })),
  );
});
