export { JudgePanel } from "./components/JudgePanel";
