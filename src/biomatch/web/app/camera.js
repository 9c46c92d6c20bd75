// The phone's own camera: a live preview, one still frame as JPEG, the torch where it exists.

export async function openCamera(video, facing) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: false,
    video: { facingMode: facing, width: { ideal: 1280 }, height: { ideal: 720 } },
  });
  video.srcObject = stream;
  video.classList.toggle("mirrored", facing === "user");
  await video.play().catch(() => {});
  await frameReady(video);
  return stream;
}

function frameReady(video) {
  if (video.readyState >= 2 && video.videoWidth) return Promise.resolve();
  return new Promise((resolve) => video.addEventListener("loadeddata", resolve, { once: true }));
}

export function closeCamera(stream) {
  for (const track of stream ? stream.getTracks() : []) track.stop();
}

// The current frame at the camera's full resolution, as JPEG (what the service receives).
export function grabFrame(video, quality = 0.92) {
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("no frame"))), "image/jpeg", quality),
  );
}

export function torchSupported(stream) {
  const [track] = stream ? stream.getVideoTracks() : [];
  const capabilities = track && track.getCapabilities ? track.getCapabilities() : {};
  return Boolean(capabilities.torch);
}

export async function setTorch(stream, on) {
  const [track] = stream.getVideoTracks();
  await track.applyConstraints({ advanced: [{ torch: on }] });
}
