/**
 * The bot's own voice leaking back into the microphone must not count as the
 * user. The output side records how loud each frame it sent was; a
 * microphone frame only counts as the user when it is at least as loud as
 * the loudest of those over the echo window (playout buffer plus acoustic
 * delay), less a margin: a leak far below the bot's level is ignored, a user
 * talking at the bot's level gets through.
 */
import { rms } from '../../../audio/pcm.js';
import { dbToGain } from '../audio/level.js';

export class EchoGate {
  /** RMS of the last output frames, newest last. */
  private readonly levels: number[] = [];
  private readonly gain: number;

  constructor(
    private readonly windowFrames: number,
    marginDb: number,
  ) {
    this.gain = dbToGain(-marginDb);
  }

  /** An output frame went out. */
  sent(frame: Float32Array): void {
    this.levels.push(rms(frame));
    if (this.levels.length > this.windowFrames) this.levels.shift();
  }

  /** The microphone frame is louder than the echo the bot's recent output could cause. */
  userDominant(mic: Float32Array): boolean {
    let reference = 0;
    for (const l of this.levels) if (l > reference) reference = l;
    return rms(mic) >= reference * this.gain;
  }
}
