/** A running (weighted) mean: update / compute / reset. compute() is null before any update. */
export class MeanMetric {
  private total = 0;
  private weight = 0;

  update(value: number, weight = 1): void {
    this.total += value * weight;
    this.weight += weight;
  }

  /** Adds every value of an array with weight 1. */
  updateAll(values: ArrayLike<number>): void {
    for (let i = 0; i < values.length; i++) this.update(values[i]);
  }

  compute(): number | null {
    return this.weight > 0 ? this.total / this.weight : null;
  }

  get count(): number {
    return this.weight;
  }

  reset(): void {
    this.total = 0;
    this.weight = 0;
  }
}
