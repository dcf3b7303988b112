export { useDataset, useDatasets, type Dataset } from "./api/datasets";
export { DatasetsPage } from "./components/DatasetsPage";
export { ExportButtons } from "./components/ExportButtons";
export { SharingPanel } from "./components/SharingPanel";
