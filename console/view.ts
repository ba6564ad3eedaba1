/** What a page gets from the router: where to draw, and a signal that fires when the user navigates away. */
export interface View {
  root: HTMLElement;
  signal: AbortSignal;
  /** Draws the current address again (a form submitted with the address it already has). */
  rerender(): void;
}
