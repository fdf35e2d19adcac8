// The test page's module: the built package, imported the way an app's bundler does.
import { Client } from "@pitchey/realtime";

window.Client = Client;
window.pitcheyReady = true;
