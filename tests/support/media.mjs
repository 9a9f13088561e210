// Camera and microphone input for the browser test, made at test time: a y4m clip from
// ffmpeg's test pattern and a wav of espeak-ng saying the phrase, which Chromium plays as its
// fake devices. Nothing binary is kept in the repository.
import { execFile } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

/** The phrase the worker configures when VOICEIT_PHRASE is not set. */
export const DEFAULT_PHRASE = "never forget tomorrow is a new day";

const INSTALL_HINT = { ffmpeg: "apt-get install ffmpeg", "espeak-ng": "apt-get install espeak-ng" };

/**
 * Writes `camera.y4m` (640x480, 15 fps, `seconds` long; Chromium loops it) and
 * `microphone.wav` (the phrase, spoken) into a fresh temporary folder.
 * Returns their paths and `remove()`, which deletes the folder.
 */
export async function makeFakeMedia({ phrase = DEFAULT_PHRASE, seconds = 6 } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), "e2e-media-"));
  const video = path.join(dir, "camera.y4m");
  const audio = path.join(dir, "microphone.wav");
  const remove = () => rm(dir, { recursive: true, force: true });

  try {
    await runTool("ffmpeg", [
      "-hide_banner", "-loglevel", "error", "-y",
      "-f", "lavfi", "-i", `testsrc=size=640x480:rate=15:duration=${seconds}`,
      "-pix_fmt", "yuv420p",
      video,
    ]);
    await runTool("espeak-ng", ["-s", "150", "-w", audio, phrase]);
    await requireNonEmpty(video);
    await requireNonEmpty(audio);
  } catch (err) {
    await remove();
    throw err;
  }
  return { dir, video, audio, phrase, remove };
}

function runTool(tool, args) {
  return new Promise((resolve, reject) => {
    execFile(tool, args, { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      if (err.code === "ENOENT") {
        const hint = INSTALL_HINT[tool];
        reject(new Error(`${tool} is not installed; the browser test needs it (${hint})`));
      } else {
        reject(new Error(`${tool} failed: ${String(stderr).trim() || err.message}`));
      }
    });
  });
}

async function requireNonEmpty(file) {
  const { size } = await stat(file);
  if (size === 0) throw new Error(`${path.basename(file)} came out empty`);
}
