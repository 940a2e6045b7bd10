import { memo, useEffect, useRef } from 'react';

// Memoised: App re-renders on every stats report (4 a second), which leaves these props unchanged.
/** A live level bar for one side of the conversation, driven by an AnalyserNode. */
export const LevelMeter = memo(function LevelMeter({ label, analyser }: { label: string; analyser?: AnalyserNode }) {
  const bar = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!analyser) {
      bar.current?.style.setProperty('--level', '0');
      return;
    }
    const samples = new Float32Array(analyser.fftSize);
    let frame = 0;
    const draw = () => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
      const rms = Math.sqrt(sum / samples.length);
      // dBFS mapped from −60..0 to 0..1: speech sits around the middle.
      const level = Math.max(0, Math.min(1, (20 * Math.log10(rms + 1e-9) + 60) / 60));
      bar.current?.style.setProperty('--level', level.toFixed(3));
      frame = requestAnimationFrame(draw);
    };
    frame = requestAnimationFrame(draw);
    return () => cancelAnimationFrame(frame);
  }, [analyser]);
  return (
    <div className="meter">
      <span className="meter-label">{label}</span>
      <div className="meter-track" ref={bar} role="presentation">
        <div className="meter-fill" />
      </div>
    </div>
  );
});
