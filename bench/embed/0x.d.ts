/** The part of 0x's programmatic API bench/embed/flamegraph.ts uses (0x 6.0.0 ships no types). */
declare module '0x' {
  interface VisualizeCpuProfileOptions {
    /** A V8 .cpuprofile (`node --cpu-prof`); the HTML is rendered from it, nothing is run. */
    visualizeCpuProfile: string;
    outputHtml: string;
    title: string;
    name: string;
    workingDir: string;
  }
  /** Resolves with the file:// URL of the HTML written. */
  export default function zeroEks(options: VisualizeCpuProfileOptions): Promise<string>;
}
