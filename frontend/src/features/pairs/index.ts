export { PairsPanel } from "./components/PairsPanel";
