/**
 * Maximum (or minimum) of the values seen in a sliding time window, in
 * amortised O(1) per value: a monotonic deque.
 */
export class SlidingExtremum {
  private times: number[] = [];
  private values: number[] = [];
  private head = 0;

  constructor(
    private readonly window: number,
    private readonly kind: 'max' | 'min',
  ) {}

  push(time: number, value: number): void {
    const dominated = this.kind === 'max' ? (v: number) => v <= value : (v: number) => v >= value;
    while (this.values.length > this.head && dominated(this.values[this.values.length - 1])) {
      this.values.pop();
      this.times.pop();
    }
    this.times.push(time);
    this.values.push(value);
  }

  /** The extremum over (time − window, time], or undefined when the window is empty. */
  get(time: number): number | undefined {
    while (this.head < this.times.length && this.times[this.head] <= time - this.window) this.head++;
    if (this.head > 64 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.values = this.values.slice(this.head);
      this.head = 0;
    }
    return this.head < this.values.length ? this.values[this.head] : undefined;
  }
}
