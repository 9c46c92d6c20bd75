// Calls to the BioMatch API with the operator's bearer token (kept in sessionStorage only).

const TOKEN_KEY = "biomatch.token";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

async function request(path, { method = "GET", json, form, token } = {}) {
  const headers = { Authorization: `Bearer ${token || savedToken() || ""}` };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  const response = await fetch(`/v1${path}`, { method, headers, body, cache: "no-store" });
  if (!response.ok) {
    let error = { code: "http_error", message: `The service answered ${response.status}.` };
    try {
      error = (await response.json()).error || error;
    } catch {
      // not JSON: keep the generic message
    }
    throw new ApiError(response.status, error.code, error.message, error.details);
  }
  return response;
}

export async function api(path, options) {
  return (await request(path, options)).json();
}

// An image the API serves (reference or probe photo) as an object URL for an <img>.
export async function imageUrl(path) {
  const response = await request(path);
  const type = response.headers.get("Content-Type") || "image/jpeg";
  return URL.createObjectURL(new Blob([await response.arrayBuffer()], { type }));
}

// True for a failure of the network (offline), not an answer from the service.
export function isNetworkFailure(error) {
  return !(error instanceof ApiError);
}
